"""Firmware budgets, measured on the real firmware under MicroPython in hwsim.

Writes bench/results/firmware.json:
- heap_peak_bytes: the app's share of the heap at its peak (live after a
  collection, sampled every 100 ms) during an SOS with a full outbox, in the
  ESP32 heap hwsim gives the firmware (100 KiB beside the code, which is
  imported in place from a ROMFS image: hwsim/firmware.py); sos_ok_in_esp32_heap
  says whether that run passed (alert acknowledged, outbox drained);
  min_app_heap: the smallest app heap it passes in (bisected; --quick: one run
  in 48 KiB that must fail); import_heap_bytes: what importing the firmware
  leaves in the heap, with the qstr pool part and, for comparison, the heap the
  .mpy files take when loaded as files (code_resident_bytes_file_load).
- sos_to_publish_ms_registered: from the moment the press qualifies (held
  sos_hold_ms) to the alert PUBLISH at the broker, the modem already registered.
- sos_to_publish_ms_cold: the same from modem off (boot + registration included),
  with the emulator's boot and registration times beside it.
- sos_transport: one SOS with the session up: ms from the qualified press to
  the first PUBACK written towards the firmware, and the bytes from the press
  to it on the UART, on a separate data channel if the tree has one, and on the
  air (``--transport``: only this and heap_peak_bytes, printed).
- mpy_total_bytes: the whole firmware compiled by mpy-cross; romfs_image_bytes.

``--tls`` writes bench/results/firmware_tls.json instead: the same watch provisioned
for the broker's plaintext listener and for its TLS listener (the modem's SSL stack,
hwsim/modem_ssl.py): heap_peak_bytes of the SOS with a full outbox, and
power_on_to_first_puback_ms, scenario ms from power-on to the first PUBACK written
towards the firmware (boot, registration, the CA download and the handshake with TLS).

    python bench/firmware_bench.py [--quick | --transport | --tls]

No figure here is asserted anywhere (tests/firmware/test_heap_budget.py enforces
the heap budget): the firmware's budgets (docs/firmware.md) are printed beside them.
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
        from cloud.tls import ensure_certificates
        from tests.conftest import free_port
        self.dir = Path(tempfile.mkdtemp(prefix="pers-bench-broker-"))
        self.tls = ensure_certificates(self.dir, ["localhost", "127.0.0.1"])
        self.broker = MosquittoBroker(self.dir, port=free_port(), tls=self.tls, tls_host="127.0.0.1",
                                      tls_port=free_port())
        self.broker.write_files([Credential("pers-cloud", mosquitto_hash("cloudpw")),
                                 Credential(DEV, mosquitto_hash(SECRET))])
        self.broker.start()
        self.port = self.broker.port

    def watch_args(self, tls: bool) -> dict:
        """Watch(...) keywords: the listener and, with TLS, the CA it is provisioned with."""
        if tls:
            return {"broker": ("127.0.0.1", self.broker.tls_port), "ca": self.tls.cafile}
        return {"broker": ("127.0.0.1", self.port)}

    def stop(self):
        self.broker.stop()


class Listener:
    """The cloud's side, reduced to a clock: when did each alert reach the broker."""

    def __init__(self, port: int, ack: bool = False):
        import paho.mqtt.client as mqtt
        self.ack = ack  # answer each alert with alert_ack "received", as the cloud does
        self.locs = 0
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
            doc = json.loads(msg.payload)
            self.alerts.append((time.monotonic(), doc))
            if self.ack:
                cmd = {"v": 1, "cid": "ack-" + doc["mid"], "ts": 0, "type": "alert_ack",
                       "ref": doc["mid"], "stage": "received"}
                client.publish(msg.topic.rsplit("/", 1)[0] + "/cmd", json.dumps(cmd), qos=1)
        elif kind == "loc":
            self.locs += 1
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


class _Counted:
    """One direction of a wire to the firmware, counted: bytes, and when a PUBACK
    (0x40 0x02) first went down it after ``mark`` (time.monotonic())."""

    def __init__(self, inner, tap: dict, key: str):
        self._inner, self._tap, self._key = inner, tap, key

    def __getattr__(self, name):
        return getattr(self._inner, name)

    async def read(self, n: int = -1) -> bytes:
        data = await self._inner.read(n)
        self._tap[self._key] += len(data)
        return data

    def write(self, data: bytes) -> None:
        self._tap[self._key] += len(data)
        if self._tap["mark"] is not None and self._tap["puback"] is None and b"\x40\x02" in data:
            self._tap["puback"] = time.monotonic()
        self._inner.write(data)


def _tap_wires(w: Watch) -> dict:
    """Counts the bytes on the watch's wires to its modem: the UART, and the separate
    data-link channel where the tree under test still has one (before the one-UART
    transport). Wraps the servers' handlers before the watch starts."""
    tap = {"uart_to_modem": 0, "uart_from_modem": 0, "link_to_modem": 0, "link_from_modem": 0,
           "mark": None, "puback": None}

    def wrap(serve, prefix):
        async def counted(reader, writer):
            return await serve(_Counted(reader, tap, prefix + "_to_modem"),
                               _Counted(writer, tap, prefix + "_from_modem"))
        return counted
    w.modem.serve = wrap(w.modem.serve, "uart")
    if hasattr(w.link, "serve"):
        w.link.serve = wrap(w.link.serve, "link")
    return tap


def sos_transport(broker: Broker, speed: float) -> dict:
    """One SOS with the modem registered and the session up: scenario ms from the
    qualified press to the first PUBACK written towards the firmware, and the
    bytes on the UART (and on a separate link channel, if any) and on the air
    (TCP payload both ways, hwsim's link model) from the press to that PUBACK."""
    scenario = Scenario(name="bench", speed=speed, modem=ModemSpec())
    listener = Listener(broker.port)
    try:
        w = Watch(DEV, SECRET, ("127.0.0.1", broker.port), scenario=scenario,
                  device_extra={"linger_ms": 3_600_000})
        tap = _tap_wires(w)
        with w:
            assert listener.wait(lambda: listener.statuses >= 1, w.rec.real(120) + 10), "no check-in"
            w.sleep(3)
            before = dict(tap)
            air0 = w.link.bytes_up + w.link.bytes_down
            tap["mark"] = time.monotonic()
            w.press("red", HOLD_S + 0.5, wait=False)
            press = w.wait_for(lambda e: e["type"] == "button" and e["down"], 5)
            assert listener.wait(lambda: tap["puback"] is not None, w.rec.real(120) + 10), "no PUBACK"
            acked = tap["puback"]
            air = w.link.bytes_up + w.link.bytes_down - air0
            press_mono = w.rec.t0 + w.rec.real(press["t"])
            ms = (acked - press_mono) * w.rec.speed * 1000 - HOLD_S * 1000
            wires = {k: tap[k] - before[k] for k in before if k.endswith("modem")}
            return {"sos_to_puback_ms": round(ms), "air_bytes": air,
                    "uart_bytes": wires["uart_to_modem"] + wires["uart_from_modem"],
                    "link_channel_bytes": wires["link_to_modem"] + wires["link_from_modem"],
                    "speed": speed}
    finally:
        listener.close()


def power_on_to_first_puback(broker: Broker, speed: float, tls: bool) -> dict:
    """Scenario ms from power-on to the first PUBACK written towards the firmware (its
    presence at check-in): boot, registration, the connection, and with TLS the CA
    download and the handshake across the air."""
    scenario = Scenario(name="bench", speed=speed, modem=ModemSpec())
    w = Watch(DEV, SECRET, scenario=scenario, device_extra={"linger_ms": 3_600_000}, **broker.watch_args(tls))
    tap = _tap_wires(w)
    tap["mark"] = time.monotonic()
    with w:
        deadline = time.monotonic() + w.rec.real(120) + 10
        while tap["puback"] is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert tap["puback"] is not None, "no PUBACK"
        ms = (tap["puback"] - w.rec.t0) * w.rec.speed * 1000
        return {"ms": round(ms), "uart_bytes": tap["uart_to_modem"] + tap["uart_from_modem"],
                "air_bytes": w.link.bytes_up + w.link.bytes_down, "speed": speed}


def tls_compare(broker: Broker, quick: bool) -> dict:
    out: dict = {"quick": quick}
    for tls in (False, True):
        key = "tls" if tls else "plain"
        runs = [sos_with_full_outbox(broker, 20 if quick else 5, firmware.APP_HEAP, tls=tls)
                for _ in range(1 if quick else 3)]
        first = power_on_to_first_puback(broker, 5 if quick else 1, tls)
        out[key] = {"heap_peak_bytes": max(r["app_live_max"] for r in runs),
                    "heap_peak_runs": [r["app_live_max"] for r in runs], "sos_ok": all(r["ok"] for r in runs),
                    "power_on_to_first_puback_ms": first["ms"], "uart_bytes_to_first_puback": first["uart_bytes"],
                    "air_bytes_to_first_puback": first["air_bytes"], "clock_speed": first["speed"]}
    out["tls_heap_cost_bytes"] = out["tls"]["heap_peak_bytes"] - out["plain"]["heap_peak_bytes"]
    out["tls_first_puback_cost_ms"] = (out["tls"]["power_on_to_first_puback_ms"]
                                       - out["plain"]["power_on_to_first_puback_ms"])
    out["budgets"] = {"heap_peak_bytes": "< 65536 (tests/firmware/test_heap_budget.py, with TLS)"}
    return out


def fill_outbox(flash: Path, limit: int) -> Path:
    """A watch's flash with ``limit`` location reports waiting in its outbox (the
    firmware's on-flash format: one JSON file each, named by kind letter and mid)."""
    outbox = flash / "outbox"
    outbox.mkdir(parents=True)
    for seq in range(1, limit + 1):
        loc = {"v": 1, "mid": f"1.{seq}", "ts": 1763780000 + seq, "reason": "periodic",
               "loc": {"lat": 45.764, "lon": 4.8357, "acc": 5.0, "src": "gnss", "ts": 1763780000, "sats": 9},
               "cell": {"mcc": 208, "mnc": 1, "lac": 12345, "cid": 67890, "rssi": -85, "rat": "LTE"},
               "batt": {"pct": 64, "mv": 3850}}
        (outbox / f"m00000001.{seq:08d}.l.msg").write_text(json.dumps({"kind": "loc", "payload": loc}))
    (flash / "boot").write_text("1")
    return flash


def full_outbox(limit: int) -> Path:
    return fill_outbox(Path(tempfile.mkdtemp(prefix="pers-bench-flash-")), limit)


def sos_with_full_outbox(broker: Broker, speed: float, heap: int | str, limit: int = 100, tls: bool = False) -> dict:
    """An SOS pressed with no coverage and the outbox full; then coverage: the
    alert reaches the cloud, which acknowledges it, and the whole outbox drains
    while the alarm is on. ``heap`` is the app heap (the code image sits above it,
    see hwsim/firmware.py). Live heap sampled every 100 ms after a collection."""
    flash = full_outbox(limit)
    scenario = Scenario(name="heap", speed=speed, world=WorldSpec(coverage=False))
    listener = Listener(broker.port, ack=True)
    try:
        with Watch(DEV, SECRET, scenario=scenario, flash_dir=flash, heap=heap, **broker.watch_args(tls),
                   device_extra={"outbox_limit": limit}, firmware_env={"PERS_SIM_MEM_REPORT": "100"}) as w:
            ok = w.wait_display("Ready", 30)
            if ok:
                w.press("red", HOLD_S + 0.5)
                ok = w.wait_display("Calling for help", 10)
            if ok:
                w.set_coverage(True)
                ok = w.wait_display("Help is coming", 90)
            if ok:
                ok = listener.wait(lambda: listener.locs >= limit - 1, w.rec.real(90) + 5)
                w.sleep(5)
            logs = [e["line"] for e in w.events if e["type"] == "log"]
            running = w.running()
    finally:
        listener.close()
    fixed = 0
    for line in logs:
        m = re.match(r"heap: rom=(\d+) ballast=(\d+) app=(\d+) qstr_credit=(\d+)", line)
        if m:  # the app's share: not the code image, the ballast, nor the credited qstr pool
            fixed = int(m.group(1)) + int(m.group(2)) + int(m.group(4))
    live = [int(m.group(1)) - fixed for line in logs for m in [re.search(r"mem: live=(\d+)", line)] if m]
    errors = [line for line in logs if "MemoryError" in line]
    left = len(list((flash / "outbox").glob("*.msg")))
    return {"ok": bool(ok) and running and not errors, "app_live_max": max(live) if live else None,
            "outbox_left": left, "alerts": len(listener.alerts), "locs": listener.locs,
            "error": errors[0] if errors else (None if running else "firmware exited")}


def min_app_heap(broker: Broker, speed: float, lo_kb: int, hi_kb: int, step_kb: int) -> dict:
    """Bisects the smallest app heap (KiB, to step_kb) in which the SOS scenario passes."""
    runs = {}
    while hi_kb - lo_kb > step_kb:
        mid = (lo_kb + hi_kb) // 2
        r = sos_with_full_outbox(broker, speed, f"{mid}k")
        runs[mid] = r["ok"]
        if r["ok"]:
            hi_kb = mid
        else:
            lo_kb = mid
    return {"min_ok_kb": hi_kb, "fails_at_kb": lo_kb, "runs": runs}


def import_footprint() -> dict:
    """What importing the firmware leaves in the heap when the code is in a ROMFS
    image (module objects, code descriptors, the qstr pool), and for comparison
    when the .mpy files are loaded into the heap as files."""
    run_dir = firmware.compiled()
    pre = "import gc, sys, micropython, vfs\nimport asyncio, json, socket, os, errno, time, random, math\n"
    rom = (pre + "f = open('%s', 'rb')\nrom = f.read()\nf.close()\nvfs.mount(vfs.VfsRom(rom), '/rom')\n"
           "sys.path[:] = ['/rom', '.frozen']\ngc.collect()\na = gc.mem_alloc()\n"
           "import hal.sim, app.watch\ngc.collect()\nprint(gc.mem_alloc() - a)\nmicropython.qstr_info()\n"
           % (run_dir / firmware.ROMFS))
    files = (pre + "gc.collect()\na = gc.mem_alloc()\nsys.path.insert(0, '%s')\n"
             "import hal.sim, app.watch\ngc.collect()\nprint(gc.mem_alloc() - a)\n" % run_dir)
    out = {}
    for key, probe in (("rom", rom), ("files", files)):
        got = subprocess.run([firmware.find_micropython(), "-X", "heapsize=1M", "-c", probe],
                             capture_output=True, text=True, env={"MICROPYPATH": ".frozen"})
        out[key] = got.stdout
    qstr = re.search(r"n_total_bytes=(\d+)", out["rom"])
    return {"import_heap_bytes": int(out["rom"].split()[0]),
            "import_qstr_pool_bytes": int(qstr.group(1)) if qstr else None,
            "code_resident_bytes_file_load": int(out["files"].split()[-1])}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a fast smoke run (accelerated clocks)")
    ap.add_argument("--out", type=Path, default=RESULTS / "firmware.json")
    ap.add_argument("--transport", action="store_true",
                    help="only the transport figures (heap peak, one SOS: bytes and press to PUBACK), printed")
    ap.add_argument("--tls", action="store_true",
                    help="TLS on vs off: heap peak and power-on to first PUBACK (bench/results/firmware_tls.json)")
    args = ap.parse_args(argv)
    broker = Broker()
    if args.tls:
        try:
            out = tls_compare(broker, args.quick)
        finally:
            broker.stop()
        path = RESULTS / "firmware_tls.json"
        path.write_text(json.dumps(out, indent=2) + "\n")
        print(json.dumps(out, indent=2))
        return 0
    if args.transport:
        try:
            out = {"heap_peak_bytes": sos_with_full_outbox(broker, 5, firmware.APP_HEAP)["app_live_max"],
                   **sos_transport(broker, 1)}
        finally:
            broker.stop()
        print(json.dumps(out, indent=2))
        return 0
    try:
        result = {"quick": args.quick}
        result.update(mpy_total_bytes())
        run_dir = firmware.compiled()
        result["romfs_image_bytes"] = (run_dir / firmware.ROMFS).stat().st_size
        result.update(import_footprint())
        speed = 20 if args.quick else 5
        budget = sos_with_full_outbox(broker, speed, firmware.APP_HEAP)
        result["esp32_app_heap_bytes"] = firmware.APP_HEAP
        result["sos_ok_in_esp32_heap"] = budget["ok"]
        # Peak live heap with the code in ROMFS: everything but the code image.
        result["heap_peak_bytes"] = budget["app_live_max"]
        # Above what importing leaves (less the credited qstr pool, which the peak excludes too).
        result["heap_peak_data_bytes"] = budget["app_live_max"] - (result["import_heap_bytes"]
                                                                   - result["import_qstr_pool_bytes"])
        result["outbox_messages"] = 100
        result["outbox_left_after_drain"] = budget["outbox_left"]
        if args.quick:
            small = sos_with_full_outbox(broker, speed, "48k")
            result["min_app_heap"] = {"fails_at_kb": 48, "fails_as": small["error"], "ok": small["ok"]}
        else:
            result["min_app_heap"] = min_app_heap(broker, speed, 40, 100, 2)
        reg = press_to_publish(broker, cold=False, speed=5 if args.quick else 1)
        cold = press_to_publish(broker, cold=True, speed=10 if args.quick else 1)
        result["sos_to_publish_ms_registered"] = reg["ms"]
        result["sos_to_publish_ms_cold"] = cold["ms"]
        result["cold_modem_boot_s"], result["cold_register_s"] = cold["boot_s"], cold["register_s"]
        result["clock_speed"] = {"registered": reg["speed"], "cold": cold["speed"]}
        result["sos_transport"] = sos_transport(broker, 5 if args.quick else 1)
        result["budgets"] = {
            "heap": "the SOS with a full outbox passes in esp32_app_heap_bytes (100 KiB, an ESP32 without PSRAM) "
                    "with the code in a ROMFS image above it (hwsim/firmware.py)",
            "heap_peak_bytes": "< 65536 on the board: the figure here leaves out the code image and the "
                               "qstr pool (import_qstr_pool_bytes, in flash when frozen) but still holds "
                               "the code descriptors a frozen build keeps in flash, in 64-bit objects",
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
