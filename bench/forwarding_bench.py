"""Forwarding throughput: events delivered from the outbox to an independent SIA
DC-09 receiver (pysiaalarm's threaded server on loopback), one forwarder thread,
a TCP connection per message as the forwarder sends them, an ACK awaited for each.
Clear Contact ID over TCP, SIA DCS over TCP with AES-256, Contact ID over UDP.
Writes bench/results/forwarding.json.

    python bench/forwarding_bench.py [--events N] [--quick]
"""
from __future__ import annotations

import argparse
import json
import socket
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pysiaalarm import CommunicationsProtocol, SIAAccount, SIAClient  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from cloud.domain.clock import SystemClock  # noqa: E402
from cloud.domain.forwarding.codes import NEW  # noqa: E402
from cloud.domain.forwarding.outbox import enqueue  # noqa: E402
from cloud.domain.uow import transaction  # noqa: E402
from cloud.seed import DEMO_ADMIN, seed_demo  # noqa: E402
from cloud.settings import Settings  # noqa: E402
from cloud.store.migrate import upgrade  # noqa: E402
from cloud.store.models import ForwardOutbox, Operator  # noqa: E402
from cloud.wiring import build_services  # noqa: E402

RESULTS = REPO / "bench" / "results"
KEY = "K7pW2xQ9vL4mN8rT6yB3cF5hJ1dG0sZa"
CASES = [("cid-tcp", "ADM-CID", "tcp", None), ("sia-tcp-aes256", "SIA-DCS", "tcp", KEY),
         ("cid-udp", "ADM-CID", "udp", None)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_case(name: str, fmt: str, protocol: str, key: str | None, events: int) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="pers-fwd-"))
    settings = Settings(data_dir=tmp, log_json=False, outbound_allow_loopback=True)
    upgrade(settings.db_url)
    svc = build_services(settings, clock=SystemClock(), with_mqtt=False)
    seed = seed_demo(svc.sm, svc.clock, tmp)
    received: list = []
    port = free_port()
    proto = CommunicationsProtocol.UDP if protocol == "udp" else CommunicationsProtocol.TCP
    client = SIAClient("127.0.0.1", port, [SIAAccount("5A17", key)], received.append, protocol=proto)
    client.start()
    try:
        with svc.sm() as s:
            admin = s.scalar(select(Operator).where(Operator.username == DEMO_ADMIN[0]))
            s.expunge(admin)
        svc.admin.create_receiver(admin, {"name": "bench", "host": "127.0.0.1", "port": port, "fmt": fmt,
                                          "protocol": protocol, "account": "5A17",
                                          **({"aes_key": key, "key_encoding": "ascii"} if key else {})})
        with transaction(svc.sm) as tx:
            for _ in range(events):
                enqueue(tx.session, seed.tenant_id, "sos", NEW, svc.clock.now())
        t0 = time.perf_counter()
        while True:
            svc.forwarder.run_once()
            with svc.sm() as s:
                left = s.scalar(select(func.count()).select_from(ForwardOutbox).where(ForwardOutbox.status != "acked"))
            if not left:
                break
        elapsed = time.perf_counter() - t0
    finally:
        client.stop()
    return {"case": name, "format": fmt, "protocol": protocol, "encrypted": key is not None, "events": events,
            "received": len(received), "seconds": round(elapsed, 3), "events_per_s": round(events / elapsed, 1),
            "ms_per_event": round(1000 * elapsed / events, 2)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=2000)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args(argv)
    events = 100 if a.quick else a.events
    out = {"bench": "forwarding", "database": "sqlite", "receiver": "pysiaalarm 3.2.2 (threaded, loopback)",
           "note": "one forwarder thread; each event is framed, sent, and its ACK awaited before the next",
           "results": [run_case(*c, events=events) for c in CASES]}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "forwarding.json").write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))
    return 0 if all(r["received"] == r["events"] for r in out["results"]) else 1


if __name__ == "__main__":
    sys.exit(main())
