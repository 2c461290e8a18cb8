"""The firmware's fall detector on RECORDED wrist data: WEDA-FALL, replayed from a local copy.

WEDA-FALL (Wrist Elderly Daily Activity and Fall dataset; Marques & Moreno, the
repository joaojtmarques/WEDA-FALL) was recorded with a Fitbit Sense on the wrist at
50 Hz: falls F01-F08 by 14 young volunteers onto a mattress, daily activities
D01-D11 by them and by 11 volunteers aged 77-95 (users 21-31, no falls). Its
accelerometer files are `dataset/50Hz/<code>/U<user>_R<trial>_accel.csv`:
`accel_time_list,accel_x_list,accel_y_list,accel_z_list`, seconds and m/s^2. The
watch's sensor saturates at +-39.2 m/s^2 (4 g), as the LIS3DH does at the range
the firmware sets.

Nothing of the dataset is in this repository (its licence was not checked; the data
stay where a partner keeps them). Give the folder on the command line:

    python bench/fall_recorded_bench.py --weda /path/to/WEDA-FALL/dataset/50Hz

Without it, or when the folder is absent, the bench says so and writes nothing.

How a file is replayed: the watch delivers its samples in bursts (four or five rows
a tenth of a second apart share nearly one timestamp), so the rows are taken as
evenly spaced over the file's span and linearly interpolated onto the firmware's
50 Hz grid; m/s^2 become mg (/9.80665); each sample then goes through the LIS3DH
readout (hwsim/accel_readout.py: noise, 12-bit truncation, clipping at the range),
and the firmware detector (firmware/app/fall.py, under MicroPython) reads them. No
sample is invented: a file that ends while the detector is still judging a
candidate (its confirmation window runs past the recording) counts as no alarm,
and the bench reports how many files ended so ("undecided").

Writes bench/results/fall_recorded.json: per code, the traces and how many the
detector called a fall, for the firmware's defaults.
"""
from __future__ import annotations

import argparse
import csv
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hwsim import firmware  # noqa: E402
from hwsim.accel_readout import FIRMWARE_CONFIG  # noqa: E402

RESULTS = REPO / "bench" / "results"
HZ = FIRMWARE_CONFIG.odr_hz
G_MS2 = 9.80665
# Each line of the traces file: {"name", "hz", "s"}; argv[2]: a JSON list of threshold
# settings. Prints one line per trace: the verdict under each setting, and whether the
# detector was still judging a candidate when the recording ended.
RUNNER = """
import json, sys
from app.fall import FallDetector
settings = json.loads(open(sys.argv[2]).read())
with open(sys.argv[1]) as f:
    for line in f:
        t = json.loads(line)
        fall, pending = [], []
        for th in settings:
            d = FallDetector(t["hz"], th, log=lambda m: None)
            fall.append(1 if d.feed(t["s"]) else 0)
            pending.append(0 if d.stage == "idle" else 1)
        print(json.dumps({"name": t["name"], "fall": fall, "pending": pending}))
"""
# The dataset's README, tables 1 and 2.
CODES = {
    "F01": "fall forward while walking (slip)", "F02": "lateral fall while walking (slip)",
    "F03": "fall backward while walking (slip)", "F04": "fall forward while walking (trip)",
    "F05": "fall backward trying to sit down", "F06": "fall forward from sitting (faint)",
    "F07": "fall backward from sitting (faint)", "F08": "lateral fall from sitting (faint)",
    "D01": "walking", "D02": "jogging", "D03": "stairs up and down", "D04": "sit on a chair and get up",
    "D05": "attempt to get up, collapse into the chair", "D06": "crouch, tie shoes, get up",
    "D07": "stumble while walking", "D08": "gentle jump (reaching up)", "D09": "hit a table with the hand",
    "D10": "clapping", "D11": "opening and closing a door",
}
ELDERLY_FROM = 21  # the README: users 21-31 are the older volunteers


def read_accel_csv(path: Path) -> list[tuple[float, float, float, float]]:
    rows = []
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            rows.append((float(row["accel_time_list"]), float(row["accel_x_list"]),
                         float(row["accel_y_list"]), float(row["accel_z_list"])))
    return rows


def to_firmware_samples(rows: list[tuple[float, float, float, float]], seed: int) -> list[list[int]]:
    """The rows as the firmware would read them: 50 Hz, mg, through the LIS3DH readout."""
    n = len(rows)
    if n < 2:
        return []
    span = rows[-1][0] - rows[0][0]
    step = span / (n - 1)  # rows evenly spaced over the span (the bursts' timestamps are delivery times)
    out: list[list[int]] = []
    rng = random.Random(seed)
    k = 0
    while True:
        t = k / HZ
        pos = t / step if step > 0 else 0.0
        i = int(pos)
        if i >= n - 1:
            break
        frac = pos - i
        a, b = rows[i], rows[i + 1]
        mg = tuple((a[j] + (b[j] - a[j]) * frac) * 1000.0 / G_MS2 for j in (1, 2, 3))
        out.append(FIRMWARE_CONFIG.sample(mg, rng))  # type: ignore[arg-type]
        k += 1
    return out


def collect(folder: Path) -> list[tuple[str, str, list[list[int]]]]:
    traces = []
    for code in sorted(CODES):
        for path in sorted((folder / code).glob("U*_R*_accel.csv")):
            rows = read_accel_csv(path)
            samples = to_firmware_samples(rows, seed=len(traces))
            if samples:
                traces.append((code, f"{code}/{path.name}", samples))
    return traces


def score(traces: list[tuple[str, str, list[list[int]]]], verdicts: list[dict], settings: int) -> dict:
    per: dict[str, dict] = {}
    for (code, name, _), v in zip(traces, verdicts, strict=True):
        user = int(name.split("/")[1].split("_")[0][1:])
        key = code + (" elderly" if user >= ELDERLY_FROM else "")
        p = per.setdefault(key, {"what": CODES[code], "traces": 0, "detected": [0] * settings,
                                 "undecided": [0] * settings})
        p["traces"] += 1
        for k in range(settings):
            p["detected"][k] += v["fall"][k]
            p["undecided"][k] += v["pending"][k]
    return per


def summarise(per: dict, k: int) -> dict:
    falls = [p for key, p in per.items() if key.startswith("F")]
    adls = [p for key, p in per.items() if key.startswith("D")]
    n_f, n_a = sum(p["traces"] for p in falls), sum(p["traces"] for p in adls)
    tp, fp = sum(p["detected"][k] for p in falls), sum(p["detected"][k] for p in adls)
    return {"falls": n_f, "falls_detected": tp, "sensitivity": round(tp / n_f, 3) if n_f else None,
            "adls": n_a, "adls_alarmed": fp, "specificity": round(1 - fp / n_a, 3) if n_a else None,
            "undecided": sum(p["undecided"][k] for p in per.values()),
            "per_code": {key: {"what": p["what"], "traces": p["traces"], "detected": p["detected"][k],
                               "undecided": p["undecided"][k]} for key, p in sorted(per.items())}}


def replay(traces: list[tuple[str, str, list[list[int]]]], settings: list[dict]) -> list[dict]:
    """Each trace through firmware/app/fall.py under MicroPython, once per setting."""
    tmp = Path(tempfile.mkdtemp(prefix="pers-fall-rec-"))
    data = tmp / "traces.jsonl"
    with data.open("w") as f:
        for _, name, s in traces:
            f.write(json.dumps({"name": name, "hz": HZ, "s": s}) + "\n")
    (tmp / "settings.json").write_text(json.dumps(settings))
    script = tmp / "replay.py"
    script.write_text(RUNNER)
    out = subprocess.run([firmware.find_micropython(), "-X", "heapsize=4M", str(script), str(data),
                          str(tmp / "settings.json")], capture_output=True, text=True,
                         env={"MICROPYPATH": f".frozen:{firmware.compiled()}"}, timeout=1800)
    if out.returncode != 0:
        raise RuntimeError(out.stderr or out.stdout)
    return [json.loads(line) for line in out.stdout.splitlines()]


def run(folder: Path, settings: list[dict]) -> dict:
    t0 = time.monotonic()
    traces = collect(folder)
    verdicts = replay(traces, settings)
    per = score(traces, verdicts, len(settings))
    return {
        "dataset": "WEDA-FALL (joaojtmarques/WEDA-FALL, dataset/50Hz, *_accel.csv)",
        "folder_given": str(folder),
        "files": sorted(name for _, name, _ in traces),
        "defaults": summarise(per, 0),
        **({"settings": [{"thresholds": th, **summarise(per, k)} for k, th in enumerate(settings) if k]}
           if len(settings) > 1 else {}),
        "readout": {"odr_hz": HZ, "range_mg": FIRMWARE_CONFIG.range_mg, "lsb_mg": FIRMWARE_CONFIG.lsb_mg},
        "wall_s": round(time.monotonic() - t0, 1),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weda", type=Path, help="a local copy of WEDA-FALL's dataset/50Hz folder")
    ap.add_argument("--out", type=Path, default=RESULTS / "fall_recorded.json")
    ap.add_argument("--note", default="", help="where the local copy came from, kept in the result")
    args = ap.parse_args(argv)
    if args.weda is None or not args.weda.is_dir():
        print(json.dumps({"skipped": "no WEDA-FALL folder given (--weda DIR): nothing replayed"}))
        return 0
    result = run(args.weda, [{}])
    if not result["files"]:
        print(json.dumps({"skipped": f"no U*_R*_accel.csv under {args.weda}/<code>/"}))
        return 0
    if args.note:
        result["note"] = args.note
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result["defaults"][k] for k in ("falls", "falls_detected", "adls", "adls_alarmed")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
