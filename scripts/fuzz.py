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
    "wire_contract": ("tests/cloud/test_protocol_fuzz.py", {"PERS_FUZZ_EXAMPLES": "100000"}, 100000 + 33333),
    "ingest_on_database": ("tests/cloud/domain/test_ingest_fuzz.py", {"PERS_FUZZ_EXAMPLES": "100000"}, 100000),
    "openapi_schemathesis": ("tests/cloud/api/test_api_schemathesis.py", {"PERS_SCHEMATHESIS_EXAMPLES": "500"}, None),
    # AT parsers and MQTT decoder: 100,000 inputs each; modem driver sessions and command payloads fewer.
    "firmware_parsers": ("tests/firmware/test_mpy_units.py", {"PERS_FUZZ_EXAMPLES": "100000"}, 200000),
}


def main(argv: list[str] | None = None) -> int:
    import argparse
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--only", action="append", choices=sorted(SUITES),
                   help="run only this suite (repeatable); the others keep their last figures")
    a = p.parse_args(argv)
    out = ROOT / "bench" / "results" / "fuzz.json"
    try:
        results = json.loads(out.read_text())["suites"] if a.only else {}
    except (OSError, ValueError, KeyError):
        results = {}
    for name, (path, env, cases) in SUITES.items():
        if a.only and name not in a.only:
            continue
        start = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "timeout=3600",
                               path, "-k", "fuzz or schemathesis or every_message"],
                              cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True)
        tail = proc.stdout.strip().splitlines()[-1:] or [""]
        # A suite that selected no test (pytest's 5) did not pass: it checked nothing.
        results[name] = {"passed": proc.returncode == 0, "cases": cases,
                         "duration_s": round(time.monotonic() - start, 1), "summary": tail[0],
                         "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        print(f"{name}: {results[name]}", flush=True)
    ok = all(r.get("passed") for r in results.values())
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"suites": results, "all_passed": ok}, indent=2) + "\n")
    print(f"wrote {out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
