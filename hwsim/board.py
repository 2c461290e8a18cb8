"""The board bus: the watch's buttons, display and vibration motor, as newline JSON."""
from __future__ import annotations

import asyncio
import json

from hwsim.events import Recorder
from hwsim.world import World


class BoardBus:
    def __init__(self, world: World, rec: Recorder, held_at_boot: list[str] = ()):
        self.world, self.rec = world, rec
        self.buttons = {"red": False, "black": False}
        for name in held_at_boot:
            self.buttons[name] = True
        self.reset_cause = "power_on"
        self.display = ""
        self.wdt_timeout_ms: int | None = None
        self.wdt_held = False
        self.last_feed = 0.0
        self._writer: asyncio.StreamWriter | None = None

    def set_button(self, name: str, down: bool) -> None:
        self.buttons[name] = down
        self.rec.record("button", name=name, down=down)
        self._send({"ev": "button", "name": name, "down": down})

    def _send(self, msg: dict) -> None:
        if self._writer is not None and not self._writer.is_closing():
            self._writer.write((json.dumps(msg) + "\n").encode())

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writer = writer
        self.wdt_timeout_ms, self.wdt_held = None, False
        try:
            while line := await reader.readline():
                try:
                    msg = json.loads(line)
                except ValueError:
                    self.rec.record("bus_garbage", line=line[:200].decode(errors="replace"))
                    continue
                self._handle(msg)
        except (ConnectionError, OSError):
            pass
        finally:
            if self._writer is writer:
                self._writer = None
            writer.close()

    def _handle(self, msg: dict) -> None:
        ev = msg.get("ev")
        if ev == "hello":
            self._send({"ev": "state", "buttons": self.buttons, "wall": self.world.wall(),
                        "batt": self.world.battery, "reset_cause": self.reset_cause})
        elif ev == "display":
            self.display = msg.get("text", "")
            self.rec.record("display", text=self.display)
        elif ev == "vibrate":
            self.rec.record("vibrate", ms=msg.get("ms"))
        elif ev == "wdt":
            self.wdt_timeout_ms = msg.get("timeout_ms")
            self.last_feed = self.rec.now()
        elif ev == "feed":
            self.last_feed = self.rec.now()
        elif ev == "wdt_hold":
            self.wdt_held = True
        else:
            self.rec.record("board", **{k: v for k, v in msg.items() if k != "type"})

    def watchdog_expired(self) -> bool:
        if self.wdt_timeout_ms is None or self.wdt_held:
            return False
        return (self.rec.now() - self.last_feed) * 1000 > self.wdt_timeout_ms
