"""Standby days on one charge, from the real firmware's duty cycle in hwsim.

The watch (real firmware, MicroPython) runs with a short heartbeat at high
clock speed; hwsim's energy meter integrates each part's current (datasheet
figures, hwsim/energy.py). One check-in (modem on -> registered -> connect ->
status -> queued commands -> modem off) gives the charge of a wake-up, the
time between gives the sleep current; the projection applies them to the
battery and heartbeat asked for (600 mAh, hourly by default). Writes
bench/results/standby.json.

    python bench/standby_bench.py [--quick] [--battery-mah 600] [--heartbeat-s 3600]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.firmware_bench import DEV, SECRET, Broker  # noqa: E402
from hwsim.energy import CURRENT_MA, standby_days  # noqa: E402
from hwsim.runner import Watch  # noqa: E402
from hwsim.scenario import Scenario  # noqa: E402

RESULTS = REPO / "bench" / "results"


def measure(port: int, measure_heartbeat_s: int, speed: float) -> dict:
    scenario = Scenario(name="standby", speed=speed, config={"heartbeat_s": measure_heartbeat_s})
    with Watch(DEV, SECRET, ("127.0.0.1", port), scenario=scenario) as w:
        marks = []  # (event, scenario t, mAh used) at each modem power on / off

        def seen(state, n):
            return len([e for e in w.events if e["type"] == "modem" and e.get("state") == state]) >= n

        def mark(state, n, timeout):
            end = time.monotonic() + w.rec.real(timeout) + 5
            while not seen(state, n):
                if time.monotonic() > end:
                    raise RuntimeError(f"modem never reached '{state}' #{n}")
                time.sleep(0.002)
            ev = [e for e in w.events if e["type"] == "modem" and e.get("state") == state][n - 1]
            marks.append((state, ev["t"], w.meter.used()))

        # boot check-in first (1st power on/off); then one heartbeat cycle, then the next power on
        mark("off", 1, 300)
        mark("power on", 2, measure_heartbeat_s + 60)
        mark("off", 2, 300)
        mark("power on", 3, measure_heartbeat_s + 60)
        report = w.meter.report()
    (_, t_off1, q_off1), (_, t_on2, q_on2), (_, t_off2, q_off2), (_, t_on3, q_on3) = marks
    active_s = t_off2 - t_on2
    active_mah = q_off2 - q_on2
    sleep_ma = ((q_on2 - q_off1) + (q_on3 - q_off2)) / (((t_on2 - t_off1) + (t_on3 - t_off2)) / 3600)
    return {"checkin_s": round(active_s, 1), "checkin_mah": round(active_mah, 4),
            "sleep_ma": round(sleep_ma, 3), "period_measured_s": round(t_on3 - t_on2, 1),
            "by_part_mah": report["by_part_mah"], "clock_speed": speed}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a short heartbeat at a high clock speed")
    ap.add_argument("--battery-mah", type=float, default=600.0)
    ap.add_argument("--heartbeat-s", type=int, default=3600)
    ap.add_argument("--out", type=Path, default=RESULTS / "standby.json")
    args = ap.parse_args(argv)
    broker = Broker()
    try:
        m = measure(broker.port, 120 if args.quick else 600, speed=50 if args.quick else 20)
    finally:
        broker.stop()
    days = standby_days(args.battery_mah, m["checkin_mah"], m["checkin_s"], m["sleep_ma"], args.heartbeat_s)
    result = {"standby_days": round(days, 1), "battery_mah": args.battery_mah, "heartbeat_s": args.heartbeat_s,
              **m, "currents_ma": CURRENT_MA, "quick": args.quick}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("standby_days", "checkin_s", "checkin_mah", "sleep_ma")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
