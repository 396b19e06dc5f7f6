"""Checks that a Terraform file is laid out as `terraform fmt` leaves it (for
tests/it/provision/shell.rs, where the terraform binary may be missing).

The rules checked, from hclwrite's formatter (what `terraform fmt` runs):
- two spaces of indentation per open block, object or list spanning lines;
  no tabs, no trailing spaces, one newline at the end, no run of blank lines;
- in a run of consecutive one-line attributes at the same depth (a blank
  line, a comment, a nested block or a value spanning lines ends the run),
  every `=` stands one space after the longest name of the run;
- list items separated by ", " and no space inside the brackets.

Prints each violation as "LINE: problem" and exits 1 when there is one.
"""

import re
import sys

ATTRIBUTE = re.compile(r'^(?P<indent> *)(?P<name>[A-Za-z_][A-Za-z0-9_-]*|"(?:[^"\\]|\\.)*")(?P<gap> *)= (?P<value>.*)$')


def strip_strings(text):
    return re.sub(r'"(?:[^"\\]|\\.)*"', '""', text)


def balance(text):
    bare = strip_strings(text)
    return sum(bare.count(c) for c in "[{(") - sum(bare.count(c) for c in "]})")


def check(lines):
    problems = []
    depth = 0
    run = []

    def close_run():
        if len(run) > 1 or (run and len(run[0][1].group("gap")) != 1):
            width = max(len(m.group("name")) for _, m in run)
            for number, m in run:
                if len(m.group("name")) + len(m.group("gap")) != width + 1:
                    problems.append(f"{number}: '=' is not one space after the longest name of its run ({width} characters)")
        run.clear()

    for number, line in enumerate(lines, start=1):
        if "\t" in line:
            problems.append(f"{number}: a tab")
        if line != line.rstrip():
            problems.append(f"{number}: trailing spaces")
        stripped = line.strip()
        opening_depth = depth - (1 if re.match(r"^[\]\})]", stripped) else 0)
        if stripped and len(line) - len(line.lstrip(" ")) != 2 * opening_depth:
            problems.append(f"{number}: indented {len(line) - len(line.lstrip(' '))} spaces, expected {2 * opening_depth}")
        bare = strip_strings(stripped)
        for inner in re.findall(r"\[([^\[\]]*)\]", bare):
            if inner != inner.strip() or re.search(r",(?! )|\s,", inner):
                problems.append(f"{number}: list items not separated by ', '")
        m = ATTRIBUTE.match(line)
        one_line = m is not None and balance(m.group("value")) == 0
        if one_line and run and len(run[-1][1].group("indent")) == len(m.group("indent")):
            run.append((number, m))
        else:
            close_run()
            if one_line:
                run.append((number, m))
        depth += balance(stripped)
    close_run()
    text = "\n".join(lines)
    if re.search(r"\n\n\n", text):
        problems.append("a run of blank lines")
    return problems


def main(path):
    with open(path) as f:
        text = f.read()
    problems = check(text.split("\n")[:-1] if text.endswith("\n") else text.split("\n"))
    if not text.endswith("\n") or text.endswith("\n\n"):
        problems.append("the file does not end with exactly one newline")
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
