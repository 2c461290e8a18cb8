"""The ingest domain alone, in one process: CPU cost per stored message of
``Ingestor.handle`` (one transaction per message) against ``Ingestor.handle_batch``
(one transaction per batch), on the same SQLite (or ``--database-url``) store.

No broker and no network: this isolates the cost the cloud's ingest worker adds
to paho's (bench/ingest_bench.py measures both together, end to end), and is far
less sensitive to other load on the machine than the end-to-end rates.
Writes bench/results/ingest_batch.json.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import write_result  # noqa: E402


def loc_payload(mid: str, ts: int) -> bytes:
    # the shape hwsim/fleet.py's twins send
    return json.dumps({"v": 1, "mid": mid, "ts": ts,
                       "loc": {"lat": 45.764, "lon": 4.8357, "acc": 8.5, "src": "gnss", "ts": ts, "sats": 7},
                       "cell": {"mcc": 208, "mnc": 1, "lac": 12345, "cid": 67890, "rssi": -85, "rat": "LTE"},
                       "batt": {"pct": 64, "mv": 3850}, "reason": "periodic"}, separators=(",", ":")).encode()


def run(quick: bool = False, devices: int = 200, messages: int | None = None, batch: int = 500,
        database_url: str | None = None) -> dict:
    from cloud.domain.ports import NullSender
    from cloud.seed import seed_demo
    from cloud.settings import Settings
    from cloud.store.migrate import upgrade
    from cloud.wiring import build_services
    from hwsim.fleet import provision_fleet
    messages = messages or (2000 if quick else 20000)
    tmp = Path(tempfile.mkdtemp(prefix="pers-ingest-batch-"))
    settings = Settings(data_dir=tmp, log_json=False, database_url=database_url)
    upgrade(settings.db_url)
    svc = build_services(settings, with_mqtt=False, sender=NullSender())
    seed_demo(svc.sm, svc.clock, tmp)
    creds = provision_fleet(settings, devices, sync_broker=False)
    ids = [d for d, _ in creds]
    ts = int(time.time())
    seq = iter(range(10**9))

    def items(n):
        return [(f"pers/v1/{ids[i % len(ids)]}/loc", loc_payload(f"1.{next(seq)}", ts)) for i in range(n)]

    # warm-up: every device online (its first message takes the slow path)
    svc.ingestor.handle_batch(items(len(ids)))
    out = {"quick": quick, "devices": devices, "batch": batch, "store": settings.db_url.split(":")[0].split("+")[0]}
    single_n = max(200, messages // 20)
    work = items(single_n)
    c0, t0 = time.process_time(), time.perf_counter()
    for topic, payload in work:
        svc.ingestor.handle(topic, payload)
    out["single"] = {"messages": single_n, "cpu_us_per_msg": round((time.process_time() - c0) / single_n * 1e6, 1),
                     "per_s": round(single_n / (time.perf_counter() - t0), 1)}
    work = items(messages)
    c0, t0 = time.process_time(), time.perf_counter()
    for k in range(0, messages, batch):
        outs = svc.ingestor.handle_batch(work[k:k + batch])
        assert all(o.accepted and not o.duplicate for o in outs)
    out["batched"] = {"messages": messages, "cpu_us_per_msg": round((time.process_time() - c0) / messages * 1e6, 1),
                      "per_s": round(messages / (time.perf_counter() - t0), 1)}
    # redelivery of a whole batch: every message a duplicate, nothing stored twice
    outs = svc.ingestor.handle_batch(work[:batch])
    out["redelivered_batch_all_duplicates"] = all(o.duplicate for o in outs)
    svc.sm.kw["bind"].dispose()
    shutil.rmtree(tmp, ignore_errors=True)
    write_result("ingest_batch" if out["store"] == "sqlite" else f"ingest_batch_{out['store']}", out)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--devices", type=int, default=200)
    p.add_argument("--messages", type=int)
    p.add_argument("--batch", type=int, default=500)
    p.add_argument("--database-url")
    p.add_argument("--postgres", action="store_true", help="a throwaway PostgreSQL (Debian's binaries)")
    a = p.parse_args(argv)
    pg = None
    if a.postgres and not a.database_url:
        from bench.pg import TempPostgres
        pg = TempPostgres().start()
        a.database_url = pg.url
    try:
        r = run(a.quick, a.devices, a.messages, a.batch, a.database_url)
    finally:
        if pg:
            pg.stop()
    print({k: r[k] for k in ("single", "batched", "redelivered_batch_all_duplicates")})
    return 0


if __name__ == "__main__":
    sys.exit(main())
