"""The recorder: every observable thing in a simulation, with its scenario time.

It is also the scenario clock. A scenario runs at ``speed`` times real time:
scenario seconds = real seconds since ``t0`` x speed. Every time in hwsim's
API (timeouts, ``within``, ``at``) is in scenario seconds, so a test reads the
same at 1x and at 50x.

Printed as a readable timeline, written as JSON lines, and waited on by tests.
"""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import TextIO


def describe(ev: dict) -> str:
    kind = ev["type"]
    if kind == "display":
        return f"display: {ev['text']}"
    if kind == "vibrate":
        return f"vibrate {ev['ms']} ms"
    if kind == "button":
        if ev["down"]:
            return f"button {ev['name']} pressed"
        return f"button {ev['name']} released"
    if kind == "log":
        return f"firmware: {ev['line']}"
    detail = " ".join(f"{k}={v}" for k, v in ev.items() if k not in ("t", "type"))
    return f"{kind} {detail}".rstrip()


class Recorder:
    def __init__(self, out: TextIO | None = None, jsonl: TextIO | None = None,
                 show_logs: bool = False):
        self.t0 = time.monotonic()
        self.speed = 1.0
        self.events: list[dict] = []
        self.out = out
        self.jsonl = jsonl
        self.show_logs = show_logs
        self._cond = threading.Condition()

    def now(self) -> float:
        return (time.monotonic() - self.t0) * self.speed

    def real(self, scenario_s: float) -> float:
        """Real seconds that ``scenario_s`` scenario seconds take."""
        return scenario_s / self.speed

    def record(self, kind: str, **fields) -> dict:
        ev = {"t": round(self.now(), 3), "type": kind, **fields}
        with self._cond:
            self.events.append(ev)
            self._cond.notify_all()
        if self.out and (kind != "log" or self.show_logs):
            print(f"[{ev['t']:6.1f}s] {describe(ev)}", file=self.out, flush=True)
        if self.jsonl:
            self.jsonl.write(json.dumps(ev) + "\n")
            self.jsonl.flush()
        return ev

    def wait_for(self, match: Callable[[dict], bool], timeout: float, start: int = 0) -> dict | None:
        """The first event (from index ``start``) that matches, waiting up to ``timeout``
        scenario seconds (plus a real second of slack for a busy machine)."""
        deadline = time.monotonic() + self.real(timeout) + (1.0 if self.speed > 1 else 0.0)
        i = start
        with self._cond:
            while True:
                while i < len(self.events):
                    if match(self.events[i]):
                        return self.events[i]
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)

    def of(self, kind: str) -> list[dict]:
        with self._cond:
            return [e for e in self.events if e["type"] == kind]
