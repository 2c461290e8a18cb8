"""What the benchmarks measure with: a psutil sampler of CPU and RSS per process,
one-off CPU and RSS readings, and py-spy profiles summarised to their top functions."""
from __future__ import annotations

import collections
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]


class Sampler(threading.Thread):
    """CPU % (of one core) and RSS of some processes, every ``interval`` s."""

    def __init__(self, pids: dict[str, int], interval: float = 0.5):
        super().__init__(daemon=True)
        self.procs = {}
        for name, pid in pids.items():
            try:
                self.procs[name] = psutil.Process(pid)
                self.procs[name].cpu_percent()
            except psutil.Error:
                pass
        self.interval = interval
        self.samples: dict[str, list[tuple[float, float, float]]] = collections.defaultdict(list)
        self._halt = threading.Event()

    def run(self) -> None:
        t0 = time.monotonic()
        while not self._halt.wait(self.interval):
            for name, p in self.procs.items():
                try:
                    with p.oneshot():
                        self.samples[name].append((time.monotonic() - t0, p.cpu_percent(),
                                                   p.memory_info().rss / 2**20))
                except psutil.Error:
                    pass

    def stop(self) -> dict:
        self._halt.set()
        self.join(timeout=2)
        return self.summary()

    def summary(self) -> dict:
        out = {}
        for name, rows in self.samples.items():
            if not rows:
                continue
            cpu = [r[1] for r in rows]
            rss = [r[2] for r in rows]
            out[name] = {"cpu_pct_mean": round(sum(cpu) / len(cpu), 1), "cpu_pct_max": round(max(cpu), 1),
                         "rss_mb_start": round(rss[0], 1), "rss_mb_end": round(rss[-1], 1),
                         "rss_mb_max": round(max(rss), 1)}
        return out


def rss_mb(pid: int) -> float:
    return round(psutil.Process(pid).memory_info().rss / 2**20, 1)


def cpu_s(pid: int) -> float:
    t = psutil.Process(pid).cpu_times()
    return t.user + t.system


class PySpy:
    """py-spy record of a process for ``seconds`` (raw collapsed stacks) -> top functions."""

    def __init__(self, pid: int, seconds: int, out: Path, rate: int = 100):
        self.out = out
        exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        self.available = Path(exe).exists()
        self.proc = None
        if self.available:
            out.parent.mkdir(parents=True, exist_ok=True)
            self.proc = subprocess.Popen([exe, "record", "-p", str(pid), "-d", str(seconds), "-r", str(rate),
                                          "-f", "raw", "-o", str(out), "--threads", "--nonblocking"],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def wait(self, timeout: float = 60) -> dict:
        if not self.proc:
            return {"available": False}
        try:
            _, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        if not self.out.exists():
            return {"available": True, "error": err.decode(errors="replace")[-500:]}
        return summarize_collapsed(self.out)


def summarize_collapsed(path: Path, top: int = 15) -> dict:
    """Self and inclusive sample shares per function from py-spy's raw (collapsed) output,
    restricted to the ingest worker thread when present."""
    self_c, incl_c = collections.Counter(), collections.Counter()
    threads = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        try:
            n = int(n)
        except ValueError:
            continue
        frames = stack.split(";")
        threads[frames[0]] += n
        total += n
        if frames:
            self_c[_short(frames[-1])] += n
        for f in set(_short(f) for f in frames[1:]):
            incl_c[f] += n
    if not total:
        return {"samples": 0}
    return {"samples": total, "file": str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path),
            "threads": {k: round(v / total, 3) for k, v in threads.most_common(6)},
            "top_self": [[k, round(v / total, 3)] for k, v in self_c.most_common(top)],
            "top_inclusive": [[k, round(v / total, 3)] for k, v in incl_c.most_common(top * 2)]}


def _short(frame: str) -> str:
    # "func (path/to/file.py:123)" -> "func (file.py)"
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    f = where.rsplit(":", 1)[0]
    parts = f.split("/")
    if "site-packages" in parts:
        f = "/".join(parts[parts.index("site-packages") + 1:][:2])
    elif "main" in parts:
        f = "/".join(parts[parts.index("main") + 1:])
    else:
        f = parts[-1]
    return f"{name} ({f})"
