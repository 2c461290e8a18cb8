"""An MQTT-aware TCP proxy that injects delivery faults between devices and the broker.

It frames MQTT packets (fixed header + remaining length) so that it can drop or
duplicate whole PUBLISH packets in either direction, and cut every connection
for a while (a network outage). Everything else passes through untouched.

With ``tls`` (the broker's TlsFiles, cloud/tls.py) it stands where the broker's TLS
listener stands: the devices' TLS ends here, with the broker's own certificate, so
they verify it against the CA they were given as they would the broker, and the
proxy's own connection to the broker's TLS listener verifies the broker in turn.
Only that way can it see the MQTT packets inside; the devices' path stays TLS end
to end of each hop.
Used by the chaos run (bench/chaos/run.py) and its CI form (tests/system/test_chaos.py).
"""
from __future__ import annotations

import asyncio
import json
import random
import ssl
import threading
import time
from collections import Counter
from dataclasses import dataclass

PUBLISH = 3


@dataclass
class Policy:
    drop_up: float = 0.0     # device -> broker PUBLISH dropped
    dup_up: float = 0.0      # device -> broker PUBLISH sent twice
    drop_down: float = 0.0   # broker -> device PUBLISH dropped (e.g. a lost alert_ack)
    dup_down: float = 0.0    # broker -> device PUBLISH sent twice


async def read_packet(reader: asyncio.StreamReader) -> bytes:
    first = await reader.readexactly(1)
    length, multiplier, header = 0, 1, bytearray(first)
    while True:
        b = (await reader.readexactly(1))[0]
        header.append(b)
        length += (b & 0x7F) * multiplier
        if not b & 0x80:
            break
        multiplier *= 128
        if multiplier > 128 ** 3:
            raise ValueError("malformed remaining length")
    return bytes(header) + await reader.readexactly(length)


class FaultProxy:
    def __init__(self, upstream: tuple[str, int], listen: tuple[str, int] = ("127.0.0.1", 0), seed: int = 1,
                 tls=None):
        self.upstream, self.listen = upstream, listen
        self.server_ssl: ssl.SSLContext | None = None
        self.upstream_ssl: ssl.SSLContext | None = None
        if tls is not None:
            self.server_ssl = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.server_ssl.load_cert_chain(tls.certfile, tls.keyfile)
            self.upstream_ssl = ssl.create_default_context(cafile=str(tls.cafile))
        self.policy = Policy()
        self.rng = random.Random(seed)
        self.stats: Counter = Counter()
        # Every (device, mid) of an alert a device put on the wire, dropped or not:
        # what the chaos run must find stored, firmware watches included.
        self.alerts_up: dict[tuple[str, str], float] = {}
        self._down_until = 0.0
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fault-proxy", daemon=True)
        self.port = 0

    # --- control (thread-safe) ---------------------------------------------------------
    def start(self) -> FaultProxy:
        self._thread.start()
        self.port = asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(10)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def in_outage(self) -> bool:
        return self._loop.time() < self._down_until

    def outage(self, seconds: float) -> None:
        """Cut every connection and refuse new ones for ``seconds``."""
        self.stats["outages"] += 1
        self._down_until = self._loop.time() + seconds
        asyncio.run_coroutine_threadsafe(self._close_all(), self._loop).result(10)

    # --- proxying -----------------------------------------------------------------------
    async def _serve(self) -> int:
        self._server = await asyncio.start_server(self._client, *self.listen, ssl=self.server_ssl)
        return self._server.sockets[0].getsockname()[1]

    async def _shutdown(self) -> None:
        self._server.close()
        await self._close_all()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _close_all(self) -> None:
        for w in list(self._writers):
            w.close()
        self._writers.clear()

    async def _client(self, reader, writer) -> None:
        if self._loop.time() < self._down_until:
            self.stats["refused"] += 1
            writer.close()
            return
        try:
            up_r, up_w = await asyncio.open_connection(*self.upstream, ssl=self.upstream_ssl,
                                                       server_hostname=self.upstream[0] if self.upstream_ssl else None)
        except (OSError, ssl.SSLError):
            writer.close()
            return
        self._writers.update((writer, up_w))
        try:
            await asyncio.gather(self._pipe(reader, up_w, "up"), self._pipe(up_r, writer, "down"),
                                 return_exceptions=True)
        except asyncio.CancelledError:
            pass  # the proxy is shutting down
        for w in (writer, up_w):
            w.close()
            self._writers.discard(w)

    async def _pipe(self, reader, writer, direction: str) -> None:
        try:
            while True:
                packet = await read_packet(reader)
                if packet[0] >> 4 == PUBLISH:
                    if direction == "up":
                        self._observe_alert(packet)
                    drop = self.policy.drop_up if direction == "up" else self.policy.drop_down
                    dup = self.policy.dup_up if direction == "up" else self.policy.dup_down
                    if drop and self.rng.random() < drop:
                        self.stats[f"dropped_{direction}"] += 1
                        continue
                    if dup and self.rng.random() < dup:
                        self.stats[f"duplicated_{direction}"] += 1
                        writer.write(packet)
                writer.write(packet)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError, OSError, asyncio.CancelledError):
            writer.close()

    def _observe_alert(self, packet: bytes) -> None:
        try:
            i = 1
            while packet[i] & 0x80:  # the remaining length's continuation bytes
                i += 1
            i += 1
            tlen = int.from_bytes(packet[i:i + 2], "big")
            topic = packet[i + 2:i + 2 + tlen].decode()
            if not topic.endswith("/alert"):
                return
            body = i + 2 + tlen + (2 if (packet[0] >> 1) & 3 else 0)  # QoS > 0 carries a packet id
            mid = json.loads(packet[body:])["mid"]
            self.alerts_up.setdefault((topic.split("/")[2], str(mid)), time.monotonic())
        except (IndexError, UnicodeDecodeError, ValueError, KeyError, TypeError):
            self.stats["unparsed_alerts"] += 1
