"""Parse the CI recipes in examples/ci as YAML and print every `cognigate`
command they run, as JSON: [{"file", "job", "subcommand", "flags", "text"}].

Used by tests/it/provision/recipes.rs, which checks each flag against the binary's help.
"""
import json
import shlex
import sys
from pathlib import Path

import yaml  # PyYAML, installed with moto


def scripts(document):
    """(job name, shell text) for every run/script/before_script/after_script."""
    if isinstance(document.get("jobs"), dict):  # GitHub Actions
        for job, body in document["jobs"].items():
            for step in body.get("steps", []):
                if "run" in step:
                    yield job, step["run"], step.get("if")
        return
    for job, body in document.items():  # GitLab CI: top-level jobs
        if not isinstance(body, dict) or str(job).startswith("."):
            continue
        for key in ("before_script", "script", "after_script"):
            lines = body.get(key) or []
            for line in lines if isinstance(lines, list) else [lines]:
                yield job, line, key


def commands(text):
    text = text.replace("\\\n", " ")
    for line in text.splitlines():
        try:
            words = shlex.split(line, comments=True)
        except ValueError:
            continue
        for i, word in enumerate(words):
            if word == "cognigate" and i + 1 < len(words) and not words[i + 1].startswith("-"):
                rest = words[i + 2 :]
                end = next((j for j, w in enumerate(rest) if w in ("|", ">", "&&", ";", "||")), len(rest))
                flags = [w.split("=", 1)[0] for w in rest[:end] if w.startswith("--")]
                yield words[i + 1], flags, line.strip()


def main(paths):
    out = []
    for path in paths:
        document = yaml.safe_load(Path(path).read_text())
        for job, text, condition in scripts(document):
            for subcommand, flags, line in commands(str(text)):
                out.append({"file": Path(path).name, "job": job, "when": condition,
                            "subcommand": subcommand, "flags": flags, "text": line})
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1:])
