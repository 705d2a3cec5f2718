"""The Python side of bench/fernet.ts: times cryptography's Fernet on the workload given on stdin
({"key", "plaintext_b64", "seconds"}) and prints {"ops", "seconds", "version"} as JSON. The clock
runs inside Python, so interpreter start-up is not counted."""

import base64
import json
import sys
import time

import cryptography
from cryptography.fernet import Fernet

request = json.load(sys.stdin)
fernet = Fernet(request["key"])
plaintext = base64.b64decode(request["plaintext_b64"])


def run(seconds: float) -> tuple[int, float]:
    ops = 0
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        assert fernet.decrypt(fernet.encrypt(plaintext)) == plaintext
        ops += 1
    return ops, time.perf_counter() - start


run(0.3)
ops, elapsed = run(request["seconds"])
print(json.dumps({"ops": ops, "seconds": elapsed, "version": cryptography.__version__}))
