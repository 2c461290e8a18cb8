"""Where this process's memory is, sampled to a JSON-lines file (``PERS_MEMPROBE``).

Diagnosis for soaks (bench/soak_bench.py), off by default: it tells which part of
the RSS moves, the Python heap, glibc malloc's arenas, SQLite's allocator or the
mappings."""
from __future__ import annotations

import gc
import logging
import os
import threading
import time
from pathlib import Path

from cloud.settings import Settings

log = logging.getLogger("pers.memprobe")


def start_memory_probe(settings: Settings | None = None) -> MemoryProbe | None:
    """``PERS_MEMPROBE=<file>``: every ``PERS_MEMPROBE_S`` seconds (default 5), append
    one JSON line of where this process's memory is, so that a soak can tell which
    part of its RSS moves: the Python heap (allocated blocks, and with
    ``PERS_TRACEMALLOC=<frames>`` the traced bytes and the top growing call sites
    since the probe started), glibc malloc (in use, free but kept, per arena mmap),
    SQLite's own allocator (its page caches), and the mappings (anonymous, file,
    the database's -shm). Off by default; without tracemalloc it costs a few
    milliseconds per sample (``gc.get_objects`` once every 6 samples).
    Without ``settings``, the environment's (read now, like any other setting)."""
    settings = settings or Settings()
    if not settings.memprobe:
        return None
    probe = MemoryProbe(Path(settings.memprobe), settings.memprobe_s, settings.tracemalloc)
    threading.Thread(target=probe.run, name="memprobe", daemon=True).start()
    return probe


class MemoryProbe:
    def __init__(self, path: Path, interval_s: float, frames: int):
        import ctypes
        import ctypes.util
        self.path, self.interval_s, self.frames = path, interval_s, frames
        self._libc = ctypes.CDLL(None)
        self._sqlite = None
        try:
            # The same library the sqlite3 module is linked against (already loaded).
            import _sqlite3  # noqa: F401
            self._sqlite = ctypes.CDLL(ctypes.util.find_library("sqlite3") or "libsqlite3.so.0")
            self._sqlite.sqlite3_memory_used.restype = ctypes.c_int64
            self._sqlite.sqlite3_memory_highwater.restype = ctypes.c_int64
        except OSError:
            self._sqlite = None

        class _Mallinfo2(ctypes.Structure):
            _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                        "fsmblks", "uordblks", "fordblks", "keepcost")]
        self._mallinfo2 = getattr(self._libc, "mallinfo2", None)
        if self._mallinfo2 is not None:
            self._mallinfo2.restype = _Mallinfo2
        self._baseline = None
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        import json
        import tracemalloc
        if self.frames:
            tracemalloc.start(self.frames)
            self._baseline = tracemalloc.take_snapshot()
        t0 = time.monotonic()
        n = 0
        while not self._stop.wait(self.interval_s):
            n += 1
            try:
                row = self.sample(time.monotonic() - t0, objects=n % 6 == 0)
                with open(self.path, "a") as fh:
                    fh.write(json.dumps(row) + "\n")
            except Exception:  # noqa: BLE001 (a diagnostic must never take the service down)
                log.exception("memory probe failed")

    def arenas(self) -> list[list[float]]:
        """[MB obtained from the system, MB free in it] per malloc arena (the first is
        the main one, the others are the threads'), from glibc's malloc_info."""
        import ctypes
        import re
        import tempfile
        libc = self._libc
        libc.fopen.restype = ctypes.c_void_p
        libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
        libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
        libc.fclose.argtypes = [ctypes.c_void_p]
        with tempfile.NamedTemporaryFile("r", suffix=".xml") as tmp:
            fp = libc.fopen(tmp.name.encode(), b"w")
            if not fp:
                return []
            libc.malloc_info(0, fp)
            libc.fclose(fp)
            xml = tmp.read()
        out = []
        for heap in re.findall(r'<heap nr="\d+">(.*?)</heap>', xml, re.S):
            free = sum(int(x) for x in re.findall(r'<total type="(?:fast|rest)" count="\d+" size="(\d+)"', heap))
            cur = re.search(r'<system type="current" size="(\d+)"', heap)
            out.append([round(int(cur.group(1)) / 2**20, 2) if cur else None, round(free / 2**20, 2)])
        return out

    def sample(self, t: float, objects: bool) -> dict:
        import sys
        import tracemalloc
        mb = 2 ** 20
        row: dict = {"t": round(t, 1), "py_blocks": sys.getallocatedblocks()}
        row.update(_smaps())
        row["sqlite_conns"] = _sqlite_connections()
        if self._mallinfo2 is not None:
            mi = self._mallinfo2()
            row.update(malloc_in_use_mb=round((mi.uordblks + mi.hblkhd) / mb, 2),
                       malloc_free_mb=round(mi.fordblks / mb, 2), malloc_mmapped_mb=round(mi.hblkhd / mb, 2),
                       malloc_arena_mb=round(mi.arena / mb, 2))
        if self._sqlite is not None:
            row.update(sqlite_mb=round(self._sqlite.sqlite3_memory_used() / mb, 2),
                       sqlite_highwater_mb=round(self._sqlite.sqlite3_memory_highwater(0) / mb, 2))
        if objects:
            counts: dict[str, int] = {}
            for o in gc.get_objects():  # not the frozen start-up objects: what came after
                k = type(o).__name__
                counts[k] = counts.get(k, 0) + 1
            row["gc_objects"] = sum(counts.values())
            row["gc_top"] = sorted(counts.items(), key=lambda kv: -kv[1])[:15]
            row["arenas"] = self.arenas()
        if tracemalloc.is_tracing():
            cur, peak = tracemalloc.get_traced_memory()
            row.update(traced_mb=round(cur / mb, 2), traced_peak_mb=round(peak / mb, 2))
            if objects and self._baseline is not None:
                snap = tracemalloc.take_snapshot().filter_traces(
                    [tracemalloc.Filter(False, tracemalloc.__file__)])
                diff = snap.compare_to(self._baseline, "traceback")
                row["traced_growth"] = [[round(d.size_diff / 1024, 1), d.count_diff,
                                         " <- ".join(f"{f.filename.rsplit('/', 2)[-1]}:{f.lineno}"
                                                     for f in d.traceback)]
                                        for d in diff[:12]]
        return row


def _sqlite_connections() -> int:
    """Open SQLite connections: each holds its database file open once."""
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        n += target.endswith(".db") or target.endswith(".sqlite")
    return n


def _smaps() -> dict:
    """Resident MB per kind of mapping, from /proc/self/smaps."""
    out = {"rss_mb": 0.0, "anon_mb": 0.0, "heap_mb": 0.0, "anon_mmap_mb": 0.0, "file_mb": 0.0, "shm_mb": 0.0,
           "anon_maps": 0}
    name, kb = "", 0
    try:
        fh = open("/proc/self/smaps")
    except OSError:
        return {}
    with fh:
        for line in fh:
            first = line.split(None, 1)[0]
            if "-" in first and not first.endswith(":"):
                parts = line.split()
                name = parts[5] if len(parts) > 5 else ""
            elif first == "Rss:":
                kb = int(line.split()[1])
                out["rss_mb"] += kb
                if name == "[heap]":
                    out["heap_mb"] += kb
                elif name.endswith("-shm"):
                    out["shm_mb"] += kb
                elif name == "":
                    out["anon_mmap_mb"] += kb
                    out["anon_maps"] += 1
                elif not name.startswith("["):
                    out["file_mb"] += kb
            elif first == "Anonymous:":
                out["anon_mb"] += int(line.split()[1])
    return {k: (round(v / 1024, 2) if k.endswith("_mb") else v) for k, v in out.items()}
