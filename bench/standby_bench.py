"""Standby days on one charge: the real firmware's behaviour in hwsim, charged from datasheets.

The watch (real firmware, MicroPython) runs in hwsim: a boot check-in, one whole
heartbeat cycle, and the next power-on. hwsim's meter records every state change
of every part (every light sleep and wake of the ESP32, the modem's power, boot,
search, registration) and every burst on the air; the bench also records every
AT command the modem answers. hwsim/power_model.py charges that record with
datasheet figures (each with its source) and adds what hwsim does not model:
RRC tail, TLS handshake, a real registration time, accelerometer, regulator,
leakage, self-discharge. One check-in's charge plus the idle rate between give
the days on the battery and heartbeat asked for (600 mAh, hourly by default).
Writes bench/results/standby.json; docs/figures.md explains each figure.

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
from hwsim import power_model  # noqa: E402
from hwsim.runner import Watch  # noqa: E402
from hwsim.scenario import BoardSpec, Scenario  # noqa: E402

RESULTS = REPO / "bench" / "results"
GOAL_DAYS = {"at_least": 10, "aim": 14}
DEEP_SLEEP_AFTER_S = 10  # device option: idle this long, the watch deep-sleeps till the check-in


def record_run(port: int, measure_heartbeat_s: int, speed: float, barometer: bool = False) -> dict:
    """One hwsim run: the meter's timeline, the AT commands, and the marks of the
    cycle measured (2nd power-on to 2nd off, and the idle spans around it)."""
    # The standby design: deep sleep between check-ins once idle for DEEP_SLEEP_AFTER_S,
    # woken by the RTC timer, the SOS button or the LIS3DH's interrupt (app/watch.py).
    scenario = Scenario(name="standby", speed=speed, config={"heartbeat_s": measure_heartbeat_s},
                        device={"deep_sleep_after_s": DEEP_SLEEP_AFTER_S}, board=BoardSpec(barometer=barometer))
    w = Watch(DEV, SECRET, ("127.0.0.1", port), scenario=scenario)
    at_log: list[tuple[float, str]] = []
    answer_time = w.modem.duration

    def duration(cmd: str) -> float:  # the modem answers every command through here
        at_log.append((w.rec.now(), cmd))
        return answer_time(cmd)

    w.modem.duration = duration  # type: ignore[method-assign]
    w.meter.record_timeline()
    with w:
        def nth(state: str, n: int, timeout: float) -> float:
            end = time.monotonic() + w.rec.real(timeout) + 5
            while True:
                evs = [e for e in w.events if e["type"] == "modem" and e.get("state") == state]
                if len(evs) >= n:
                    return evs[n - 1]["t"]
                if time.monotonic() > end:
                    raise RuntimeError(f"modem never reached '{state}' #{n}")
                time.sleep(0.01)

        marks = {"off1": nth("off", 1, 300), "on2": nth("power on", 2, measure_heartbeat_s + 60)}
        marks["off2"] = nth("off", 2, 300)
        marks["on3"] = nth("power on", 3, measure_heartbeat_s + 60)
    assert w.meter.timeline is not None
    return {"timeline": list(w.meter.timeline), "at_log": at_log, "marks": marks}


SETTLE_S = 10.0  # no deep sleep: after the modem is off, the firmware finishes the check-in before its steady sleep
TICK_S = 0.5     # firmware/app/routine.py _TICK_MS


def windows(run: dict) -> tuple[tuple[float, float], list[tuple[float, float]]]:
    """The check-in measured and the idle spans around it. With deep sleep: from the
    wake (the reboot) before the 2nd power-on to the deep sleep after the 2nd power-off,
    so the boot and the awake minutes around the check-in count once per heartbeat;
    the idle spans are the deep sleeps. Without: power-on to SETTLE_S after power-off."""
    m, tl = run["marks"], run["timeline"]
    edges, prev = [], None
    for t, part, st in sorted(tl, key=lambda e: e[0]):
        if part != "mcu":
            continue
        if st == "deep_sleep" and prev != "deep_sleep":
            edges.append((t, "sleep"))
        elif prev == "deep_sleep" and st != "deep_sleep":
            edges.append((t, "wake"))
        prev = st

    def sleep_after(t: float) -> float:
        return next((e for e, k in edges if k == "sleep" and e > t), t + SETTLE_S)

    def wake_before(t: float) -> float:
        return max((e - 1e-3 for e, k in edges if k == "wake" and e <= t), default=t)

    cycle = (wake_before(m["on2"]), sleep_after(m["off2"]))
    return cycle, [(sleep_after(m["off1"]), wake_before(m["on2"])), (cycle[1], wake_before(m["on3"]))]


def project(run: dict, battery_mah: float, heartbeat_s: int, over: dict | None = None) -> dict:
    """Days on the battery: one check-in (windows()) plus the steady idle rate for
    the rest of the heartbeat, both from the recorded run."""
    tl, ats = run["timeline"], run["at_log"]
    (c0, c1), idle_spans = windows(run)
    cycle = power_model.integrate(tl, ats, c0, c1, battery_mah, over)
    idles = [power_model.integrate(tl, ats, a, b, battery_mah, over) for a, b in idle_spans]
    span = sum(i["span_s"] for i in idles)
    idle_mah = sum(i["mah"] for i in idles)
    ticks = sum(i["counts"]["tick_wakes"] for i in idles)
    # the 500 ms tick runs only while the chip is up (light sleep between ticks), not in deep sleep
    expected = int(sum(i["not_deep_s"] for i in idles) / TICK_S)
    # the board keeps its 500 ms tick even when the unix port lags behind it
    missed = max(0, expected - ticks)
    wake_s = (over or {}).get("esp32_wake_active_s", power_model.FIGURES["esp32_wake_active_s"].value)
    idle_mah += missed * wake_s * power_model.FIGURES["esp32_active_ma"].value / 3600
    idle = {"average_ma": idle_mah / (span / 3600), "span_s": span}
    days = power_model.standby_days(battery_mah, cycle, idle, heartbeat_s, over)
    items = sorted(set().union(*(i["by_item_mah"] for i in idles)))
    return {"standby_days": round(days, 1), "checkin": cycle, "idle_ma": round(idle["average_ma"], 4),
            "idle_deep_sleep_wakes": sum(i["counts"]["deep_sleep_wakes"] for i in idles),
            "idle_awake_s": round(sum(i["not_deep_s"] for i in idles), 1),
            "idle_span_s": round(span, 1), "idle_tick_wakes": ticks, "idle_tick_wakes_expected": expected,
            "idle_by_item_mah_per_day": {k: round(sum(i["by_item_mah"].get(k, 0) for i in idles) * 86400 / span, 3)
                                         for k in items}}


WHAT_IFS = {
    # what would change the figure, each alone (docs/figures.md)
    "without the TLS handshake (clear MQTT, as the firmware connects today)": {"tls": True},
    "tick work 3 ms instead of 10 ms": {"esp32_wake_active_s": 0.003},
    "tick work 30 ms": {"esp32_wake_active_s": 0.030},
    "registration 20 s (poor coverage)": {"modem_registration_s": 20.0},
    "RRC tail 20 s": {"rrc_tail_s": 20.0},
    "low-Iq LDO (1 uA) and no divider leak": {"ldo_quiescent_ma": 0.001, "battery_divider_ma": 0.0},
    "boot from deep sleep 2 s instead of 0.5 s": {"esp32_boot_s": 2.0},
    # BOARD_POWERON (GPIO12) low while the modem is off: its supply cut, no off-leakage
    "modem supply cut while off": {"modem_off_ma": 0.0},
}
# Motion wakes: nobody moves in this bench. A wake by the LIS3DH's free-fall
# interrupt (the watch dropped on a table, taken off and tossed) costs a boot,
# then DEEP_SLEEP_AFTER_S of the awake idle (light sleep, the 500 ms tick) before
# the watch deep-sleeps again.
MOTION_WAKES_PER_DAY = (10, 50)


def motion_wake_mah() -> float:
    f = power_model.FIGURES
    boot = f["esp32_boot_s"].value * f["esp32_active_ma"].value
    awake = DEEP_SLEEP_AFTER_S * (f["esp32_light_sleep_ma"].value
                                  + f["esp32_active_ma"].value * f["esp32_wake_active_s"].value / TICK_S)
    return (boot + awake) / 3600


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a short heartbeat at a high clock speed")
    ap.add_argument("--battery-mah", type=float, default=600.0)
    ap.add_argument("--heartbeat-s", type=int, default=3600)
    ap.add_argument("--barometer", action="store_true",
                    help="a board with the optional BMP390 fitted (default out: standby_barometer.json)")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    args.out = args.out or RESULTS / ("standby_barometer.json" if args.barometer else "standby.json")
    broker = Broker()
    try:
        run = record_run(broker.port, 120 if args.quick else 600, speed=50 if args.quick else 20,
                         barometer=args.barometer)
    finally:
        broker.stop()
    base = project(run, args.battery_mah, args.heartbeat_s)
    what_ifs = {}
    for name, over in WHAT_IFS.items():
        if "tls" in over:
            (c0, c1), _ = windows(run)
            cyc = power_model.integrate(run["timeline"], run["at_log"], c0, c1, args.battery_mah, tls=False)
            idle = {"average_ma": base["idle_ma"]}
            what_ifs[name] = round(power_model.standby_days(args.battery_mah, cyc, idle, args.heartbeat_s), 1)
        else:
            what_ifs[name] = project(run, args.battery_mah, args.heartbeat_s, over)["standby_days"]
    for hours in (2, 4):
        what_ifs[f"check-in every {hours} h"] = project(run, args.battery_mah, hours * 3600)["standby_days"]
    usable = args.battery_mah * power_model.FIGURES["usable_capacity_pct"].value / 100
    for n in MOTION_WAKES_PER_DAY:
        per_day = usable / base["standby_days"] + n * motion_wake_mah()
        what_ifs[f"{n} motion wakes a day (no fall)"] = round(usable / per_day, 1)
    result = {"standby_days": base["standby_days"], "battery_mah": args.battery_mah, "heartbeat_s": args.heartbeat_s,
              "goal_days": GOAL_DAYS, "goal_met": base["standby_days"] >= GOAL_DAYS["at_least"],
              "checkin_s": base["checkin"]["span_s"], "checkin_mah": base["checkin"]["mah"],
              "checkin_counts": base["checkin"]["counts"], "checkin_by_item_mah": base["checkin"]["by_item_mah"],
              "sleep_ma": base["idle_ma"], "idle_span_s": base["idle_span_s"],
              "idle_tick_wakes": base["idle_tick_wakes"], "idle_tick_wakes_expected": base["idle_tick_wakes_expected"],
              "idle_deep_sleep_wakes": base["idle_deep_sleep_wakes"], "idle_awake_s": base["idle_awake_s"],
              "deep_sleep_after_s": DEEP_SLEEP_AFTER_S, "motion_wake_mah": round(motion_wake_mah(), 5),
              "idle_by_item_mah_per_day": base["idle_by_item_mah_per_day"], "what_if_days": what_ifs,
              "at_commands_in_checkin": sorted({c.split("=")[0].split("?")[0] for t, c in run["at_log"]
                                                if run["marks"]["on2"] < t <= run["marks"]["off2"]}),
              "figures": {k: {"value": f.value, "unit": f.unit, "source": f.source}
                          for k, f in power_model.FIGURES.items()},
              "clock_speed": 50 if args.quick else 20, "quick": args.quick, "barometer": args.barometer}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("standby_days", "checkin_s", "checkin_mah", "sleep_ma", "what_if_days")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
