"""The flooding watch of bench/device_flood_bench.py, run in its own process so that its
3,000 incoming ``alert_ack`` commands and the command acks it sends back do not load the
event loop that times the other watches. It talks to the driver over a pipe: ``ready``,
then (after ``go``) ``flooding`` with the first PUBLISH's time, then ``report``."""
from __future__ import annotations

import asyncio
import time

from hwsim.fleet import Fleet


def flooder_main(conn, cred: tuple[str, str], link: dict, presses: int, drain_timeout: float,
                 chunk: int) -> None:
    """Connect one twin, say ``ready``, wait for ``go``, publish ``presses`` SOS alerts
    back to back, then wait (up to ``drain_timeout`` s) for every ``alert_ack`` and
    send the report. ``link``: Fleet's host, port and (TLS) ca (bench.harness.Env.device_link).
    Times are ``time.monotonic()``: one clock for both processes."""
    try:
        conn.send(("report", asyncio.run(_flood(conn, cred, link, presses, drain_timeout, chunk))))
    except Exception as exc:  # noqa: BLE001 - the parent reports it
        conn.send(("error", f"{type(exc).__name__}: {exc}"))


async def _flood(conn, cred, link, presses, drain_timeout, chunk) -> dict:
    loop = asyncio.get_running_loop()
    fleet = Fleet([cred], **link, alert_resend_s=None, reconnect_retries=0, window=presses + 100)
    acked_at: list[float] = []
    ack_ms: list[float] = []
    fleet.on_alert_acked = lambda twin, mid, ms: (acked_at.append(time.monotonic()), ack_ms.append(ms))
    await fleet.connect_all()
    twin = fleet.twins[0]
    if not twin.connected:
        raise RuntimeError(f"flooder did not connect: {dict(fleet.stats.errors)}")
    conn.send(("ready", None))
    await loop.run_in_executor(None, conn.recv)       # "go"
    t0 = time.monotonic()
    for i in range(presses):
        twin.send_alert("sos")
        if (i + 1) % chunk == 0 or i + 1 == presses:
            if i + 1 <= chunk:   # the first presses are on their way: the others may start calling
                conn.send(("flooding", t0))
            await asyncio.sleep(0)   # let the transport write: the broker takes them as fast as it reads
    t_published = time.monotonic()
    pubacked_at = await _drain(fleet, acked_at, presses, t0 + drain_timeout)
    rep = fleet.report()
    await fleet.close()
    return {"t0": t0, "published_at": t_published, "pubacked_at": pubacked_at, "acked_at": acked_at,
            "ack_ms": ack_ms, "sent": rep["alerts"]["sent"], "acked": rep["alerts"]["acked"],
            "resent": rep["alerts"]["resent"], "pubacked": rep["pubacked_by_kind"].get("alert", 0),
            "commands": rep["commands"], "acks_sent": rep["acks_sent"], "errors": rep["errors"],
            "device_id": twin.device_id}


async def _drain(fleet: Fleet, acked_at: list[float], presses: int, deadline: float) -> float | None:
    """Wait until the broker has PUBACKed every press and the cloud acked them all (or
    ``deadline``); returns when the broker had taken the whole flood, or None."""
    pubacked_at = None
    while time.monotonic() < deadline:
        if pubacked_at is None and fleet.stats.pubacked_by_kind.get("alert", 0) >= presses:
            pubacked_at = time.monotonic()
        if pubacked_at is not None and len(acked_at) >= presses:
            break
        await asyncio.sleep(0.005)
    return pubacked_at
