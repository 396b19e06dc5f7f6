"""Parses a Terraform file with python-hcl2 and prints it as JSON (for tests/it/provision/shell.rs).

python-hcl2 8 keeps string literals quoted ('"abc"'); they are unquoted here
(with their escapes decoded) so the test compares plain values.
"""

import json
import sys

import hcl2


def plain(value):
    if isinstance(value, dict):
        return {plain(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return json.loads(value)
    return value


with open(sys.argv[1]) as f:
    print(json.dumps(plain(hcl2.load(f))))
