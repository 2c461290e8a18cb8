#!/usr/bin/env python3
"""`make fuzz`: the long form of the fuzz tests, with figures written to
bench/results/fuzz.json (cases run, failures, duration per suite)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUITES = {
    "wire_contract": ("tests/test_protocol_fuzz.py", {"PERS_FUZZ_EXAMPLES": "100000"}, 100000 + 33333),
    "ingest_on_database": ("tests/test_ingest_fuzz.py", {"PERS_FUZZ_EXAMPLES": "100000"}, 100000),
    "openapi_schemathesis": ("tests/test_api_schemathesis.py", {"PERS_SCHEMATHESIS_EXAMPLES": "500"}, None),
    "firmware_parsers": ("tests/firmware", {"PERS_FUZZ_EXAMPLES": "100000"}, None),
}


def main() -> int:
    results, ok = {}, True
    for name, (path, env, cases) in SUITES.items():
        start = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "timeout=3600",
                               path, "-k", "fuzz or schemathesis or every_message"],
                              cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True)
        tail = proc.stdout.strip().splitlines()[-1:] or [""]
        results[name] = {"passed": proc.returncode in (0, 5), "cases": cases,
                         "duration_s": round(time.monotonic() - start, 1), "summary": tail[0]}
        ok &= proc.returncode in (0, 5)
        print(f"{name}: {results[name]}", flush=True)
    out = ROOT / "bench" / "results" / "fuzz.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"suites": results, "all_passed": ok}, indent=2))
    print(f"wrote {out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
