"""``pers sim fleet`` / ``python -m hwsim.fleet``: provision (optionally), connect N
twins, offer load, and report as JSON."""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from pathlib import Path

from hwsim.fleet import Fleet, raise_nofile
from hwsim.provision import provision_fleet, read_credentials


async def run_fleet(creds, host, port, *, duration, loc_rate, heartbeat_s, sos, max_rate=False,
                    window=2000, connect_concurrency=200, ack_timeout=30.0, ca=None) -> dict:
    fleet = Fleet(creds, host, port, window=window, connect_concurrency=connect_concurrency, ca=ca)
    await fleet.connect_all()
    t0 = time.perf_counter()
    load = asyncio.create_task(fleet.run_load(duration, loc_rate=loc_rate, heartbeat_s=heartbeat_s,
                                              max_rate=max_rate))
    if sos:
        await asyncio.sleep(min(1.0, duration / 4))
        await fleet.sos(sos, interval_s=min(0.05, duration / max(sos, 1) / 2))
    offered = await load
    await fleet.drain()
    if sos:
        await fleet.wait_alerts_acked(ack_timeout)
    elapsed = time.perf_counter() - t0
    rep = fleet.report()
    rep["offered"] = offered
    rep["elapsed_s"] = round(elapsed, 3)
    t0 = time.perf_counter()
    await fleet.close()
    rep["close_s"] = round(time.perf_counter() - t0, 3)
    return rep


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pers sim fleet", description="Run N light device twins against a broker.")
    p.add_argument("--devices", type=int, default=100, help="number of twins (first N of the credentials)")
    p.add_argument("--rate", type=float, default=10.0, help="location reports per second, fleet-wide")
    p.add_argument("--max-rate", action="store_true", help="publish loc reports as fast as PUBACKs come back")
    p.add_argument("--heartbeat", type=float, default=60.0, help="status heartbeat period per twin, s (0: off)")
    p.add_argument("--duration", type=float, default=10.0, help="seconds of load")
    p.add_argument("--sos", type=int, default=0, help="SOS alerts to send during the run (distinct twins)")
    p.add_argument("--broker", default="127.0.0.1:1883", help="host:port")
    p.add_argument("--ca", help="the broker's CA (PEM): TLS, verifying the broker (--broker is then its TLS port)")
    p.add_argument("--credentials", type=Path, help="CSV device_id,secret")
    p.add_argument("--provision", action="store_true",
                   help="first create the devices with `pers device add --count` (PERS_* settings: "
                        "the cloud's database and broker files); the secrets go to --credentials")
    p.add_argument("--tenant", default="Les Tilleuls care home")
    p.add_argument("--prefix", default="fleet")
    p.add_argument("--window", type=int, default=2000, help="max publishes awaiting PUBACK, fleet-wide")
    p.add_argument("--connect-concurrency", type=int, default=200)
    p.add_argument("--ack-timeout", type=float, default=30.0, help="s to wait for outstanding alert_acks")
    p.add_argument("--out", type=Path, help="write the JSON result here too")
    return p


def main(argv: list[str] | None = None) -> int:
    p = _parser()
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.credentials is None:
        p.error("--credentials is required")
    if args.provision:
        # No settings object: the cloud's CLI reads the same PERS_* environment as this process.
        provision_fleet(None, args.devices, tenant_name=args.tenant, prefix=args.prefix,
                        credentials=args.credentials)
    creds = read_credentials(args.credentials)[: args.devices]
    if len(creds) < args.devices:
        print(f"only {len(creds)} credentials in {args.credentials}", file=sys.stderr)
    limit = raise_nofile()
    if len(creds) + 100 > limit:
        print(f"warning: open-file limit {limit} < devices + 100; some twins will fail to connect",
              file=sys.stderr)
    host, _, port = args.broker.rpartition(":")
    rep = asyncio.run(run_fleet(creds, host or "127.0.0.1", int(port), duration=args.duration,
                                loc_rate=args.rate, heartbeat_s=args.heartbeat, sos=args.sos,
                                max_rate=args.max_rate, window=args.window,
                                connect_concurrency=args.connect_concurrency, ack_timeout=args.ack_timeout,
                                ca=args.ca))
    # The per-second series are for a benchmark reading --out; on a terminal they would
    # bury the figures under a line per second of load.
    print(json.dumps({k: v for k, v in rep.items() if k not in ("loc_sent_at", "loc_pubacked_at")}, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(rep, indent=2) + "\n")
    return 0 if rep["errors_total"] == 0 and rep["alerts"]["unacked"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
