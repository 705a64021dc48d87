#!/usr/bin/env python3
"""Pads api-keys.json to N records for the benchmark (run while Portico is stopped).

The padding records copy the argon2id hash of the first record, so they are
well-formed but match no key anyone holds; only their number matters, since
a key check looks its record up by id.
"""
import json
import os
import secrets
import string
import sys
import tempfile

path, total = sys.argv[1], int(sys.argv[2])
with open(path) as f:
    records = json.load(f)
template = records[0]
alphabet = string.ascii_lowercase + string.digits
while len(records) < total:
    record = dict(template)
    record["id"] = "".join(secrets.choice(alphabet) for _ in range(12))
    record["name"] = f"padding {len(records)}"
    record.pop("lastUsedAt", None)
    records.append(record)
directory = os.path.dirname(os.path.abspath(path))
fd, temp = tempfile.mkstemp(dir=directory)
with os.fdopen(fd, "w") as f:
    json.dump(records, f)
    f.flush()
    os.fsync(f.fileno())
os.chmod(temp, 0o600)
os.replace(temp, path)
print(len(records))
