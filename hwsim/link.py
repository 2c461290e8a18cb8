"""The data link: the watch's TCP traffic to the broker, passed only while the
simulated modem has a data bearer. Losing coverage cuts every open connection,
as a real PDP context loss would; a broker outage refuses new connections.
Every chunk on the air costs a transmit burst, and weak signal adds latency.

Packet loss. The radio loses packets in bursts (fading, a cell change), which a
Gilbert-Elliott channel models: a good state that loses nothing and a bad state
that loses every packet, with a seeded RNG. The watch speaks MQTT over TCP, and
TCP never hands the application missing or corrupted bytes: a lost segment is
sent again after the retransmission timeout (RTO, doubling at each loss of the
same segment), and everything behind it waits (head-of-line blocking). So loss
shows here as it does on a real link: delay, stalls of seconds, and when one
segment is lost ``max_retries`` times in a row the connection is dropped (the
stack gives up; the app sees the socket close). The bytes themselves always
arrive intact and in order, or not at all.
"""
from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

from hwsim.energy import Meter
from hwsim.events import Recorder
from hwsim.scenario import LinkSpec

BASE_LATENCY_S = 0.04
MSS = 1400              # bytes per TCP segment on the air
RTO_MAX_S = 60.0


class GilbertElliott:
    """Two states: good (no loss) and bad (every packet lost). From the good state
    a packet moves to bad with probability p, from bad back to good with r; so the
    mean burst is 1/r and the long-run loss p / (p + r)."""

    def __init__(self, loss: float = 0.0, burst: float = 3.0, seed: int = 1):
        self.rng = random.Random(seed)
        self.bad = False
        self.set(loss, burst)

    def set(self, loss: float, burst: float = 3.0) -> None:
        if not 0.0 <= loss <= 1.0:
            raise ValueError(f"loss must be in [0, 1], got {loss}")
        self.loss, self.burst = loss, max(1.0, burst)
        if loss >= 1.0:
            self.p, self.r = 1.0, 0.0  # dead air: nothing gets through
        else:
            self.r = 1.0 / self.burst
            self.p = min(1.0, loss * self.r / (1.0 - loss))
        if loss <= 0.0:
            self.bad = False

    def lost(self, extra: float = 0.0) -> bool:
        """One packet on the air: True when it is lost. ``extra``: independent loss
        on top (a cell edge)."""
        if self.loss > 0.0:
            self.bad = self.rng.random() >= self.r if self.bad else self.rng.random() < self.p
        return self.bad or (extra > 0.0 and self.rng.random() < extra)


class LinkProxy:
    def __init__(self, rec: Recorder, network_up: Callable[[], bool], meter: Meter | None = None,
                 broker_up: Callable[[], bool] = lambda: True, latency_s: Callable[[], float] = lambda: BASE_LATENCY_S,
                 loss: LinkSpec | None = None, edge_loss: Callable[[], float] = lambda: 0.0):
        self.rec = rec
        self.network_up = network_up
        self.broker_up = broker_up
        self.latency_s = latency_s
        self.meter = meter
        self.spec = loss or LinkSpec()
        self.channel = GilbertElliott(self.spec.loss, self.spec.burst, self.spec.seed)
        self.edge_loss = edge_loss  # () -> extra independent loss from the signal
        self._open: set[asyncio.StreamWriter] = set()
        self.opened = 0
        self.bytes_up = 0
        self.bytes_down = 0
        self.segments = 0
        self.retransmits = 0
        self.dropped = 0  # connections TCP gave up on

    def set_loss(self, loss: float, burst: float | None = None) -> None:
        self.spec.loss = loss
        if burst is not None:
            self.spec.burst = burst
        self.channel.set(self.spec.loss, self.spec.burst)

    def transmit(self, nbytes: int) -> float | None:
        """Scenario seconds of retransmission delay before ``nbytes`` are all
        through, or None when a segment was lost max_retries + 1 times (TCP gives up).
        Segments of one chunk fly together: the chunk waits for the slowest."""
        worst = 0.0
        extra = self.edge_loss()
        for _ in range(max(1, -(-nbytes // MSS))):
            self.segments += 1
            wait, rto = 0.0, self.spec.rto_s
            for attempt in range(self.spec.max_retries + 1):
                if not self.channel.lost(extra):
                    break
                if attempt == self.spec.max_retries:
                    return None
                self.retransmits += 1
                if self.meter is not None:
                    self.meter.transmit()
                wait += rto
                rto = min(rto * 2, RTO_MAX_S)
            worst = max(worst, wait)
        return worst

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
            # The TCP handshake crosses the lossy air too (SYN retries, then a timeout).
            syn = self.transmit(60)
            if syn is None:
                await asyncio.sleep(self.rec.real(self.spec.rto_s * (2 ** (self.spec.max_retries + 1) - 1)))
                writer.write(b"ERR connection timed out\n")
                self.rec.record("link", state="refused", reason="timed out (loss)")
                return
            if syn:
                await asyncio.sleep(self.rec.real(syn))
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
            pipes = [asyncio.ensure_future(self._pipe(reader, up_w, True)),
                     asyncio.ensure_future(self._pipe(up_r, writer, False))]
            await asyncio.gather(*pipes)
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
                delay = self.transmit(len(data))
                if delay is None:
                    # One segment lost max_retries + 1 times: the stack gives up and
                    # resets the connection; both ends see it close.
                    self.dropped += 1
                    self.rec.record("link", state="dropped", reason="tcp retransmissions exhausted",
                                    direction="up" if up else "down")
                    self.cut()
                    break
                if up:
                    self.bytes_up += len(data)
                else:
                    self.bytes_down += len(data)
                wait = delay + (self.latency_s() if up else 0.0)
                if delay:
                    self.rec.record("link", state="stall", s=round(delay, 1), direction="up" if up else "down")
                if wait:
                    await asyncio.sleep(self.rec.real(wait))
                if not self.network_up() or not self.broker_up():
                    break
                dst.write(data)
                await dst.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            dst.close()

    def cut(self) -> None:
        for w in list(self._open):
            w.close()
