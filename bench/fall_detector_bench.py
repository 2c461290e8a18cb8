"""The firmware's fall detector on hwsim's labelled accelerometer traces.

Runs firmware/app/fall.py under MicroPython (the interpreter the watch runs)
over every trace: falls forward, backward, sideways and from a chair; sitting
down hard, clapping, walking and stairs. Writes bench/results/fall_detector.json
with sensitivity (falls detected / falls) and specificity (daily moves left
alone / daily moves), per label too.

    python bench/fall_detector_bench.py [--quick] [--per-label N]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hwsim import firmware, traces  # noqa: E402

RESULTS = REPO / "bench" / "results"
RUNNER = """
import json, sys
from app.fall import FallDetector
with open(sys.argv[1]) as f:
    for line in f:
        t = json.loads(line)
        d = FallDetector(t["hz"], None, log=lambda m: None)
        print(json.dumps({"label": t["label"], "seed": t["seed"], "fall": d.feed(t["s"]),
                          "candidates": d.candidates}))
"""


def run(per_label: int) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="pers-fall-"))
    data = tmp / "traces.jsonl"
    with data.open("w") as f:
        for label, seed, samples in traces.labelled_set(per_label):
            f.write(json.dumps({"label": label, "seed": seed, "hz": traces.HZ, "s": samples}) + "\n")
    script = tmp / "run_detector.py"
    script.write_text(RUNNER)
    run_dir = firmware.compiled()
    out = subprocess.run([firmware.find_micropython(), "-X", "heapsize=1M", str(script), str(data)],
                         capture_output=True, text=True, env={"MICROPYPATH": f".frozen:{run_dir}"}, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(out.stderr or out.stdout)
    per: dict[str, dict] = {}
    for line in out.stdout.splitlines():
        r = json.loads(line)
        p = per.setdefault(r["label"], {"traces": 0, "detected": 0, "candidates": 0})
        p["traces"] += 1
        p["detected"] += int(r["fall"])
        p["candidates"] += r["candidates"]
    falls = [per[name] for name in traces.FALLS]
    moves = [per[name] for name in traces.ACTIVITIES]
    tp = sum(p["detected"] for p in falls)
    fp = sum(p["detected"] for p in moves)
    n_falls = sum(p["traces"] for p in falls)
    n_moves = sum(p["traces"] for p in moves)
    return {"sensitivity": round(tp / n_falls, 3), "specificity": round(1 - fp / n_moves, 3),
            "falls": n_falls, "daily_moves": n_moves, "per_label": per,
            "thresholds": "firmware/app/fall.py DEFAULTS (config `fall` overrides)"}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="5 traces per label")
    ap.add_argument("--per-label", type=int, default=50)
    ap.add_argument("--out", type=Path, default=RESULTS / "fall_detector.json")
    args = ap.parse_args(argv)
    result = run(5 if args.quick else args.per_label)
    result["quick"] = args.quick
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("sensitivity", "specificity", "falls", "daily_moves")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
