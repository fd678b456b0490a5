#!/usr/bin/env python3
"""Validates SARIF files against the vendored OASIS SARIF 2.1.0 schema with Python's jsonschema,
a second validator beside the Rust test's. The schema's own check is skipped: its `language`
pattern has a stray `]` that a strict regex check rejects (orgaudit writes no `language`)."""
import json
import sys

import jsonschema

schema = json.load(open(sys.argv[1]))
validator = jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker())
failed = False
for path in sys.argv[2:]:
    errors = list(validator.iter_errors(json.load(open(path))))
    for e in errors:
        print(f"{path}: {'/'.join(map(str, e.absolute_path))}: {e.message}")
    failed |= bool(errors)
    print(f"{path}: {'INVALID' if errors else 'valid'} ({len(errors)} errors)")
sys.exit(1 if failed else 0)
