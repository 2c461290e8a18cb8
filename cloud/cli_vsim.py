"""``pers vsim``: a tenant's stock of local virtual-SIM profiles (the platform
operator loads what the SIM provider sold; docs/deployment.md)."""
from __future__ import annotations

import csv
import getpass
import json
import sys
from datetime import datetime


def _tenant(args):
    from cloud.cli import _platform_db
    from cloud.cli_device import _find_tenant
    sm = _platform_db(args)
    tenant = _find_tenant(sm, args.tenant)
    if tenant is None:
        print(f"no tenant {args.tenant!r}", file=sys.stderr)
    return sm, tenant


def _expiry(text: str | None) -> datetime | None:
    # An ISO date (its 00:00 UTC) or time, UTC: from then on the profile is never handed out.
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "")).replace(tzinfo=None)


def cmd_vsim_add(args) -> int:
    from cloud.domain.clock import SystemClock
    from cloud.domain.vsim_stock import add_profile
    sm, tenant = _tenant(args)
    if tenant is None:
        return 2
    rows = ([{"country": args.country, "name": args.name, "iccid": args.iccid, "mccmnc": args.mccmnc,
              "apn": args.apn, "expires": args.expires, "priority": args.priority}] if args.csv is None
            else list(csv.DictReader(open(args.csv, newline="", encoding="utf-8"))))
    try:
        for r in rows:
            if not all(r.get(k) for k in ("country", "name", "iccid", "mccmnc")):
                raise ValueError(f"each profile needs country, name, iccid and mccmnc: {r}")
            mccmnc = r["mccmnc"] if isinstance(r["mccmnc"], list) else r["mccmnc"].replace(";", " ").split()
            view = add_profile(sm, SystemClock(), tenant_id=tenant.id, country=r["country"], name=r["name"],
                               iccid=r["iccid"], mccmnc=mccmnc, apn=r.get("apn") or None,
                               expires_at=_expiry(r.get("expires")), priority=int(r.get("priority") or 0),
                               actor=f"cli:{getpass.getuser()}")
            print(json.dumps(view))
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    return 0


def cmd_vsim_list(args) -> int:
    from cloud.domain.clock import SystemClock
    from cloud.domain.vsim_stock import tenant_view
    sm, tenant = _tenant(args)
    if tenant is None:
        return 2
    with sm() as s:
        print(json.dumps(tenant_view(s, tenant.id, SystemClock().now()), indent=1))
    return 0


def cmd_vsim_threshold(args) -> int:
    from cloud.domain.clock import SystemClock
    from cloud.domain.vsim_stock import set_threshold
    sm, tenant = _tenant(args)
    if tenant is None:
        return 2
    set_threshold(sm, SystemClock(), tenant.id, args.country, args.low_at, actor=f"cli:{getpass.getuser()}")
    return 0


def cmd_vsim_release(args) -> int:
    from cloud.cli import _platform_db
    from cloud.domain.clock import SystemClock
    from cloud.domain.uow import transaction
    from cloud.domain.vsim_stock import release_device
    sm = _platform_db(args)
    with transaction(sm) as tx:
        name = release_device(tx, args.device_id, SystemClock().now(), args.reason, actor=f"cli:{getpass.getuser()}")
    print(f"released {name}" if name else f"device {args.device_id!r} holds no profile")
    return 0


def add_vsim_commands(sub, common) -> None:
    sp = sub.add_parser("vsim", help="a tenant's stock of local virtual-SIM profiles")
    vs = sp.add_subparsers(dest="vsim_command", required=True)
    add = vs.add_parser("add", help="load profiles into a tenant's stock (one, or a CSV file)")
    common(add)
    add.add_argument("--tenant", required=True, help="tenant name or id")
    add.add_argument("--csv", help="columns country,name,iccid,mccmnc (space- or ;-separated),apn,expires,priority")
    add.add_argument("--country", help="ISO 3166 alpha-2, e.g. CH")
    add.add_argument("--name", help="the profile id, unique in the pool")
    add.add_argument("--iccid")
    add.add_argument("--mccmnc", nargs="+", help="the networks it registers on, e.g. 22801")
    add.add_argument("--apn")
    add.add_argument("--expires", help="UTC date or time past which it is never handed out")
    add.add_argument("--priority", type=int, default=0, help="lower is handed out first")
    add.set_defaults(func=cmd_vsim_add)
    ls = vs.add_parser("list", help="the stock per country and which watch holds which profile (JSON)")
    common(ls)
    ls.add_argument("--tenant", required=True)
    ls.set_defaults(func=cmd_vsim_list)
    th = vs.add_parser("threshold", help="warn the supervisors when free profiles fall to N")
    common(th)
    th.add_argument("--tenant", required=True)
    th.add_argument("--country", help="one country (default: every country of the tenant)")
    th.add_argument("low_at", type=int)
    th.set_defaults(func=cmd_vsim_threshold)
    rel = vs.add_parser("release", help="give a watch's profile back to the stock (decommissioned, replaced)")
    common(rel)
    rel.add_argument("device_id")
    rel.add_argument("--reason", default="decommissioned")
    rel.set_defaults(func=cmd_vsim_release)
