"""The data link: the watch's TCP traffic to the broker, passed only while the
simulated modem has a data bearer. Losing coverage cuts every open connection,
as a real PDP context loss would; a broker outage refuses new connections.
Every chunk on the air costs a transmit burst, and weak signal adds latency."""
from __future__ import annotations

import asyncio
from typing import Callable

from hwsim.energy import Meter
from hwsim.events import Recorder

BASE_LATENCY_S = 0.04


class LinkProxy:
    def __init__(self, rec: Recorder, network_up: Callable[[], bool], meter: Meter | None = None,
                 broker_up: Callable[[], bool] = lambda: True, latency_s: Callable[[], float] = lambda: BASE_LATENCY_S):
        self.rec = rec
        self.network_up = network_up
        self.broker_up = broker_up
        self.latency_s = latency_s
        self.meter = meter
        self._open: set[asyncio.StreamWriter] = set()
        self.opened = 0
        self.bytes_up = 0
        self.bytes_down = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            words = (await reader.readline()).decode(errors="replace").split()
            if len(words) != 3 or words[0] != "OPEN":
                writer.write(b"ERR bad request\n")
                return
            host, port = words[1], int(words[2])
            if not self.network_up():
                writer.write(b"ERR no network\n")
                self.rec.record("link", state="refused", reason="no network")
                return
            if not self.broker_up():
                await asyncio.sleep(self.rec.real(1.0))
                writer.write(b"ERR connection refused\n")
                self.rec.record("link", state="refused", reason="broker down")
                return
            try:
                up_r, up_w = await asyncio.open_connection(host, port)
            except OSError as exc:
                writer.write(f"ERR {exc}\n".encode())
                self.rec.record("link", state="refused", reason=str(exc))
                return
            writer.write(b"OK\n")
            await writer.drain()
            self.opened += 1
            self.rec.record("link", state="up", to=f"{host}:{port}")
            self._open.update((writer, up_w))
            await asyncio.gather(self._pipe(reader, up_w, True), self._pipe(up_r, writer, False))
            self._open.difference_update((writer, up_w))
            self.rec.record("link", state="down")
        except (ConnectionError, OSError, ValueError):
            pass
        finally:
            writer.close()

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, up: bool) -> None:
        try:
            while data := await src.read(4096):
                if not self.network_up() or not self.broker_up():
                    break
                if self.meter is not None:
                    self.meter.transmit()
                if up:
                    self.bytes_up += len(data)
                    await asyncio.sleep(self.rec.real(self.latency_s()))
                else:
                    self.bytes_down += len(data)
                dst.write(data)
                await dst.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            dst.close()

    def cut(self) -> None:
        for w in list(self._open):
            w.close()
