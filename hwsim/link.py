"""The data link: the air between the modem's TCP stack and the broker. The
watch's bytes reach it only through the modem's socket commands on the one UART
(hwsim/modem_net.py); it passes traffic only while the modem has a data bearer.
Losing coverage cuts every open connection, as a real PDP context loss would; a
broker outage refuses new connections. Every chunk on the air costs a transmit
burst, and weak signal adds latency.

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


class AirLink:
    """The radio path between the modem's TCP stack and the network: whether it
    passes traffic at all (a data bearer, the broker reachable), its latency, and
    what loss does to TCP segments (``transmit``). The modem's socket commands
    (hwsim/modem_net.py) carry the watch's bytes across it; ``cut()`` resets
    every connection it carries (the modem then reports them closed)."""

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
        self.open_writers: set[asyncio.StreamWriter] = set()  # the broker side of each connection
        self.opened = 0
        self.bytes_up = 0
        self.bytes_down = 0
        self.segments = 0
        self.retransmits = 0
        self.dropped = 0  # connections TCP gave up on

    def passes(self) -> bool:
        return self.network_up() and self.broker_up()

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

    def syn_timeout_s(self) -> float:
        """How long a connect whose SYNs are all lost takes to fail."""
        return self.spec.rto_s * (2 ** (self.spec.max_retries + 1) - 1)

    async def carry(self, nbytes: int, up: bool) -> bool:
        """One chunk across the air, with its burst, retransmission stall and
        latency; False when TCP gives up on it (the connection is dropped)."""
        if self.meter is not None:
            self.meter.transmit()
        delay = self.transmit(nbytes)
        direction = "up" if up else "down"
        if delay is None:
            self.dropped += 1
            self.rec.record("link", state="dropped", reason="tcp retransmissions exhausted", direction=direction)
            return False
        if up:
            self.bytes_up += nbytes
        else:
            self.bytes_down += nbytes
        if delay:
            self.rec.record("link", state="stall", s=round(delay, 1), direction=direction)
        wait = delay + (self.latency_s() if up else 0.0)
        if wait:
            await asyncio.sleep(self.rec.real(wait))
        return True

    def cut(self) -> None:
        for w in list(self.open_writers):
            w.close()
