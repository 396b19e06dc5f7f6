# Shared by scripts/test and scripts/demo: where things live and how the Python
# peers get installed. Source it from a script that has cd'ed to the repository root.

# Runs a command as root (directly, or through sudo).
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# One build directory for the test command and the demo; it outlives clones, so
# CI and a second checkout reuse it.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cognigate/target}"

# Creates .venv (or the venv named by $1) and installs tests/requirements.txt
# (moto[server], mcp) into it, again only when that file changed.
ensure_python_peers() {
  local venv="${1:-.venv}" who="${2:-scripts}"
  if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv" || {
      echo "$who: could not create a Python venv in $venv: install python3-venv (Debian: apt-get install python3-venv)" >&2
      return 1
    }
  fi
  local stamp="$venv/.requirements.sha" want
  want=$(sha256sum tests/requirements.txt | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "$who: installing Python peers into $venv (tests/requirements.txt: moto[server], mcp)" >&2
    "$venv/bin/pip" install -q --disable-pip-version-check -r tests/requirements.txt
    echo "$want" > "$stamp"
  fi
}
