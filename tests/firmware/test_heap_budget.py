"""The ESP32 heap budget, enforced on the real firmware.

The board runs the modules frozen in flash; here they are imported in place from
a ROMFS image and the heap is cut so that exactly the app budget remains beside
the image (hwsim/firmware.py). Everything else is counted: module objects, the
qstr pool, the interpreter, the app's data. An SOS with a full outbox must pass
in an ESP32's 100 KiB (plus the measured qstr pool of the firmware's names,
which a frozen build keeps in flash) with its peak live heap (sampled after a
collection, as bench/firmware_bench.py does) under the 64 KiB budget, and the
same run in a heap 40% smaller must run out of memory, so this test can fail."""
from __future__ import annotations

import re

from bench.firmware_bench import fill_outbox
from hwsim import firmware
from hwsim.scenario import Scenario, WorldSpec

from .conftest import DEV

LIMIT = 100
TOO_SMALL = "60k"  # the firmware needs about 70 KiB for this run (bench: min_app_heap)
PEAK_BUDGET = 64 * 1024  # the budget: peak gc.mem_alloc() during an SOS with a full outbox


def sos_with_full_outbox(make_watch, cloud, flash, heap):
    fill_outbox(flash, LIMIT)
    scenario = Scenario(name="heap", world=WorldSpec(coverage=False))
    with make_watch(scenario, flash_dir=flash, heap=heap, device_extra={"outbox_limit": LIMIT},
                    firmware_env={"PERS_SIM_MEM_REPORT": "100"}) as w:
        try:
            assert w.wait_display("Ready", 30)
            w.press("red", 1.5)
            assert w.wait_display("Calling for help", 10)
            w.set_coverage(True)
            alert = cloud.wait("alert", timeout=30)[0]
            cloud.command(DEV, cid="h-1", type="alert_ack", ref=alert["mid"], stage="received")
            assert w.wait_display("Help is coming", 60)
            cloud.wait("loc", count=LIMIT - 1, timeout=60)  # the outbox drained behind the alert
            w.sleep(5)
            ok = w.running()
        except AssertionError:
            ok = False
        logs = [e["line"] for e in w.events if e["type"] == "log"]
        return ok, logs


def peak_live(logs):
    """The app's live heap at its peak: what the benchmark reports as heap_peak_bytes
    (the code image, the ballast and the credited qstr pool left out)."""
    fixed = None
    for line in logs:
        m = re.match(r"heap: rom=(\d+) ballast=(\d+) app=(\d+) qstr_credit=(\d+)", line)
        if m:
            fixed = int(m.group(1)) + int(m.group(2)) + int(m.group(4))
    live = [int(m.group(1)) for line in logs for m in [re.match(r"mem: live=(\d+)", line)] if m]
    assert fixed is not None and live, "no heap reports"
    return max(live) - fixed


def test_sos_with_a_full_outbox_runs_in_the_esp32_app_heap(make_watch, cloud, tmp_path):
    ok, logs = sos_with_full_outbox(make_watch, cloud, tmp_path, firmware.APP_HEAP)
    heap = [ln for ln in logs if ln.startswith("heap: ")]
    assert heap and " app=%d " % (100 * 1024) in heap[0], heap
    peak = peak_live(logs)
    print("heap peak", peak)
    assert peak < PEAK_BUDGET, peak
    assert not [ln for ln in logs if "MemoryError" in ln], [ln for ln in logs if "MemoryError" in ln][:3]
    assert ok
    assert len({p["mid"] for p in cloud.received("alert")}) == 1
    assert len(list((tmp_path / "outbox").glob("*.msg"))) == 0


def test_the_same_run_in_too_small_a_heap_runs_out_of_memory(make_watch, cloud, tmp_path):
    ok, logs = sos_with_full_outbox(make_watch, cloud, tmp_path, TOO_SMALL)
    assert [ln for ln in logs if "MemoryError" in ln]
