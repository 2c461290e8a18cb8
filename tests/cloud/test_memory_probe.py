"""The memory probe (cloud/memprobe.py, PERS_MEMPROBE) and the malloc arena limit of cloud/runtime.py."""
from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time

from cloud import memprobe, runtime


def test_probe_is_off_by_default(monkeypatch):
    monkeypatch.delenv("PERS_MEMPROBE", raising=False)
    assert memprobe.start_memory_probe() is None


def test_probe_writes_where_the_memory_is(tmp_path):
    con = sqlite3.connect(tmp_path / "x.db")  # an open database: counted as a connection
    probe = memprobe.MemoryProbe(tmp_path / "probe.jsonl", 0.1, frames=0)
    row = probe.sample(1.0, objects=True)
    con.close()
    json.dumps(row)
    assert row["rss_mb"] > 0 and row["anon_mb"] > 0 and row["py_blocks"] > 0
    assert row["sqlite_conns"] >= 1
    assert row["gc_objects"] > 0 and row["gc_top"]
    if sys.platform == "linux" and probe._mallinfo2 is not None:  # glibc
        assert row["malloc_in_use_mb"] > 0 and row["arenas"]


def test_probe_thread_appends_samples(tmp_path, monkeypatch):
    out = tmp_path / "probe.jsonl"
    monkeypatch.setenv("PERS_MEMPROBE", str(out))
    monkeypatch.setenv("PERS_MEMPROBE_S", "0.2")
    probe = memprobe.start_memory_probe()
    assert probe is not None
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (not out.exists() or len(out.read_text().splitlines()) < 2):
            time.sleep(0.05)
    finally:
        probe.stop()
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) >= 2 and rows[0]["t"] < rows[-1]["t"]


def test_operator_malloc_settings_are_left_alone(monkeypatch):
    calls = []

    class Libc:
        def mallopt(self, *args):
            calls.append(args)
            return 1
    monkeypatch.setattr("ctypes.CDLL", lambda _name: Libc())
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert runtime.tune_malloc() is True
    assert calls == []
    monkeypatch.delenv("MALLOC_ARENA_MAX")
    assert runtime.tune_malloc() is True
    assert calls == [(-8, runtime.MALLOC_ARENAS)]


def test_arena_limit_holds_for_the_service_threads():
    # In a fresh process, as `pers serve` does it: set before the threads, then ten
    # threads that each allocate end up sharing at most two arenas.
    code = """
import threading
from cloud import memprobe, runtime
assert runtime.tune_malloc(arenas=2)
def work():
    bufs = [bytearray(5000) for _ in range(200)]
ts = [threading.Thread(target=work) for _ in range(10)]
[t.start() for t in ts]; [t.join() for t in ts]
from pathlib import Path
p = memprobe.MemoryProbe(Path("/dev/null"), 1, 0)
print(len(p.arenas()))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(runtime.Path(__file__).resolve().parents[2])})
    assert out.returncode == 0, out.stderr
    assert 1 <= int(out.stdout.strip()) <= 2
