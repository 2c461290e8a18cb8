"""Firmware budgets, measured on the real firmware under MicroPython in hwsim.

Writes bench/results/firmware.json:
- heap_peak_bytes: peak heap use (every allocation counted, MicroPython's own
  mem_info peak) during an SOS with a full outbox; also the part that is the
  loaded bytecode (frozen into flash on the board) and the app's data above it.
- sos_to_publish_ms_registered: from the moment the press qualifies (held
  sos_hold_ms) to the alert PUBLISH at the broker, the modem already registered.
- sos_to_publish_ms_cold: the same from modem off (boot + registration included),
  with the emulator's boot and registration times beside it.
- mpy_total_bytes: the whole firmware compiled by mpy-cross.

    python bench/firmware_bench.py [--quick]

No figure here is asserted anywhere: the budgets of issue 3 are printed beside them.
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hwsim import firmware  # noqa: E402
from hwsim.runner import Watch  # noqa: E402
from hwsim.scenario import ModemSpec, Scenario, WorldSpec  # noqa: E402

RESULTS = REPO / "bench" / "results"
DEV, SECRET = "bench-watch", "bench-secret"
HOLD_S = 1.0  # the default sos_hold_ms


class Broker:
    """The project's Mosquitto with generated passwords and ACL, on a free port."""

    def __init__(self):
        from cloud.broker import Credential, MosquittoBroker, mosquitto_hash
        from tests.conftest import free_port
        self.dir = Path(tempfile.mkdtemp(prefix="pers-bench-broker-"))
        self.broker = MosquittoBroker(self.dir, port=free_port())
        self.broker.write_files([Credential("pers-cloud", mosquitto_hash("cloudpw")),
                                 Credential(DEV, mosquitto_hash(SECRET))])
        self.broker.start()
        self.port = self.broker.port

    def stop(self):
        self.broker.stop()


class Listener:
    """The cloud's side, reduced to a clock: when did each alert reach the broker."""

    def __init__(self, port: int):
        import paho.mqtt.client as mqtt
        self.alerts: list[tuple[float, dict]] = []
        self._ready = threading.Event()
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="pers-cloud-bench")
        c.username_pw_set("pers-cloud", "cloudpw")
        c.on_connect = lambda cl, *a: cl.subscribe("pers/v1/+/+", qos=1)
        c.on_subscribe = lambda *a: self._ready.set()
        c.on_message = self._on
        c.connect("127.0.0.1", port)
        c.loop_start()
        self.client = c
        self.statuses = 0
        assert self._ready.wait(10)

    def _on(self, client, userdata, msg):
        kind = msg.topic.rsplit("/", 1)[-1]
        if kind == "alert":
            self.alerts.append((time.monotonic(), json.loads(msg.payload)))
        elif kind == "status":
            self.statuses += 1

    def wait(self, what, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if what():
                return True
            time.sleep(0.01)
        return False

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


def mpy_total_bytes() -> dict:
    out = Path(tempfile.mkdtemp(prefix="pers-mpy-"))
    files = firmware.compile_tree(firmware.FIRMWARE_DIR, out)
    sizes = {f.relative_to(out).as_posix(): f.stat().st_size for f in files}
    return {"mpy_total_bytes": sum(sizes.values()), "mpy_files": len(sizes),
            "mpy_largest": dict(sorted(sizes.items(), key=lambda kv: -kv[1])[:5])}


def code_resident_bytes() -> int:
    """Heap the loaded .mpy modules take on the unix port (in flash on the board)."""
    run_dir = firmware.compiled()
    probe = ("import gc, sys\nsys.path.append('%s')\nimport asyncio, json, socket\n"
             "import hal.sim, app.watch\ngc.collect()\nprint(gc.mem_alloc())\n" % run_dir)
    out = subprocess.run([firmware.find_micropython(), "-X", "heapsize=1M", "-c", probe],
                         capture_output=True, text=True, env={"MICROPYPATH": f".frozen:{run_dir}"})
    return int(out.stdout.split()[-1])


def press_to_publish(broker: Broker, cold: bool, speed: float) -> dict:
    """One SOS; ms (scenario time) from the qualified press to the PUBLISH."""
    scenario = Scenario(name="bench", speed=speed, modem=ModemSpec())
    device = {"linger_ms": 3_000 if cold else 3_600_000}
    listener = Listener(broker.port)
    try:
        with Watch(DEV, SECRET, ("127.0.0.1", broker.port), scenario=scenario, device_extra=device) as w:
            assert listener.wait(lambda: listener.statuses >= 1, w.rec.real(120) + 10), "no check-in"
            if cold:
                assert w.wait_for(lambda e: e["type"] == "modem" and e.get("state") == "off", 120)
            w.sleep(2)
            w.press("red", HOLD_S + 0.5, wait=False)
            press = w.wait_for(lambda e: e["type"] == "button" and e["down"], 5)
            assert listener.wait(lambda: listener.alerts, w.rec.real(120) + 10), "no alert"
            published = listener.alerts[0][0]
            press_mono = w.rec.t0 + w.rec.real(press["t"])
            ms = (published - press_mono) * w.rec.speed * 1000 - HOLD_S * 1000
            return {"ms": round(ms), "boot_s": scenario.modem.boot_s, "register_s": scenario.modem.register_s,
                    "speed": speed}
    finally:
        listener.close()


def full_outbox(limit: int) -> Path:
    flash = Path(tempfile.mkdtemp(prefix="pers-bench-flash-"))
    outbox = flash / "outbox"
    outbox.mkdir()
    for seq in range(1, limit + 1):
        loc = {"v": 1, "mid": f"1.{seq}", "ts": 1763780000 + seq, "reason": "periodic",
               "loc": {"lat": 45.764, "lon": 4.8357, "acc": 5.0, "src": "gnss", "ts": 1763780000, "sats": 9},
               "cell": {"mcc": 208, "mnc": 1, "lac": 12345, "cid": 67890, "rssi": -85, "rat": "LTE"},
               "batt": {"pct": 64, "mv": 3850}}
        (outbox / f"m00000001.{seq:08d}.l.msg").write_text(json.dumps({"kind": "loc", "payload": loc}))
    (flash / "boot").write_text("1")
    return flash


def sos_with_full_outbox(broker: Broker, speed: float, heap: str, limit: int = 100) -> dict:
    """An SOS pressed with no coverage and the outbox full; then coverage and the
    whole outbox drains while the alarm is on. Live heap sampled every 100 ms."""
    flash = full_outbox(limit)
    scenario = Scenario(name="heap", speed=speed, world=WorldSpec(coverage=False))
    with Watch(DEV, SECRET, ("127.0.0.1", broker.port), scenario=scenario, flash_dir=flash, heap=heap,
               device_extra={"outbox_limit": limit}, firmware_env={"PERS_SIM_MEM_REPORT": "100"}) as w:
        ok = w.wait_display("Ready", 60)
        if ok:
            w.press("red", HOLD_S + 0.5)
            ok = w.wait_display("Calling for help", 10)
            w.set_coverage(True)
            w.wait_for(lambda e: e["type"] == "log" and "session: connected" in e["line"], 120)
            w.sleep(30)
        live = [int(m.group(1)) for e in w.events if e["type"] == "log"
                for m in [re.search(r"mem: live=(\d+)", e["line"])] if m]
        crashed = any("MemoryError" in e.get("line", "") for e in w.events) or not w.running()
        left = len(list((flash / "outbox").glob("*.msg")))
    return {"ok": ok and not crashed, "live_max": max(live) if live else None, "outbox_left": left}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a fast smoke run (accelerated clocks)")
    ap.add_argument("--out", type=Path, default=RESULTS / "firmware.json")
    args = ap.parse_args(argv)
    broker = Broker()
    try:
        result = {"quick": args.quick}
        result.update(mpy_total_bytes())
        code = code_resident_bytes()
        speed = 20 if args.quick else 5
        roomy = sos_with_full_outbox(broker, speed, firmware.HEAP)
        budget_kb = (code + 65536) // 1024
        tight = sos_with_full_outbox(broker, speed, f"{budget_kb}k")
        result["heap_peak_bytes"] = roomy["live_max"]  # bytecode included (see code_resident_bytes)
        result["code_resident_bytes"] = code
        result["heap_peak_app_bytes"] = roomy["live_max"] - code
        result["outbox_messages"] = 100
        result["outbox_left_after_drain"] = roomy["outbox_left"]
        result["sos_ok_in_64k_app_heap"] = tight["ok"]
        result["tight_heap_kb"] = budget_kb
        reg = press_to_publish(broker, cold=False, speed=5 if args.quick else 1)
        cold = press_to_publish(broker, cold=True, speed=10 if args.quick else 1)
        result["sos_to_publish_ms_registered"] = reg["ms"]
        result["sos_to_publish_ms_cold"] = cold["ms"]
        result["cold_modem_boot_s"], result["cold_register_s"] = cold["boot_s"], cold["register_s"]
        result["clock_speed"] = {"registered": reg["speed"], "cold": cold["speed"]}
        result["budgets"] = {"heap_peak_bytes": "< 65536 (app data; bytecode frozen in flash on the board)",
                             "sos_to_publish_ms_registered": "< 1000",
                             "sos_to_publish_ms_cold": "<= boot + registration + 1000"}
    finally:
        broker.stop()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
