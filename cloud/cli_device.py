"""``pers device``: provision devices and rotate their secrets.

This is the one door through which anything outside the cloud (an installer, the
service desk, the fleet simulator, the benchmarks) creates devices: nothing else
writes device rows.
"""
from __future__ import annotations

import getpass
import json
import sys

# Rows per INSERT statement: large enough that 50,000 devices take a few statements,
# small enough to stay under SQLite's and PostgreSQL's bound-parameter limits.
CHUNK = 2000


def provision_devices(sm, clock, tenant_id: int, device_ids: list[str], *,
                      actor: str, device_protocol: str = "openpers") -> list[tuple[str, str]]:
    """What ``provision_device`` does, for many devices in one transaction: ``[(id, secret)]``.

    A fleet of thousands provisioned one by one would cost a transaction each; the
    checks (id syntax, not taken) are the same, done once for the batch, and the
    batch is all or nothing. Each device gets its own audit entry, as one added alone.
    (``cloud.domain.accounts`` is not imported: it hashes a dummy password with argon2
    at import, most of a second this command does not need.)"""
    from sqlalchemy import select

    from cloud import protocol
    from cloud.domain.security import mosquitto_hash, new_device_secret
    from cloud.domain.uow import transaction
    from cloud.store.models import AuditEntry, Device

    for device_id in device_ids:
        if device_protocol not in ("openpers", "setracker", "iw") or (
                device_protocol != "openpers" and not device_id.isdigit()):
            raise ValueError(f"a {device_protocol} watch is registered by its IMEI (digits), not {device_id!r}")
        if not protocol.DEVICE_ID_RE.match(device_id) or device_id.startswith("pers-"):
            raise ValueError(f"invalid device id {device_id!r}: [A-Za-z0-9_-]{{1,64}}, not starting with 'pers-'")
    if len(set(device_ids)) != len(device_ids):
        raise ValueError("the same device id twice in one batch")
    made = [(d, new_device_secret()) for d in device_ids]
    # Hashed before the transaction: on SQLite the write lock would otherwise be held
    # (and the running cloud's ingest blocked) for the seconds 50,000 hashes take.
    hashes = [mosquitto_hash(secret) for _, secret in made]
    now = clock.now()
    with transaction(sm) as tx:
        s = tx.session
        for i in range(0, len(device_ids), CHUNK):
            taken = s.scalar(select(Device.id).where(Device.id.in_(device_ids[i:i + CHUNK])).limit(1))
            if taken is not None:
                raise ValueError(f"device {taken} already exists")
        for i in range(0, len(made), CHUNK):
            part = made[i:i + CHUNK]
            s.execute(Device.__table__.insert(), [
                {"id": d, "tenant_id": tenant_id, "wearer_id": None, "presence": "unknown", "online": False,
                 "broker_hash": h, "created_at": now, "protocol": device_protocol}
                for (d, _), h in zip(part, hashes[i:i + CHUNK])])
            s.execute(AuditEntry.__table__.insert(), [
                {"at": now, "actor": actor, "action": "device.provisioned", "tenant_id": tenant_id,
                 "target": f"device:{d}"} for d, _ in part])
    # A gateway watch has no password (docs/gateway.md): its secret is given to nobody.
    return made if device_protocol == "openpers" else [(d, "") for d, _ in made]


def _device_ids(args) -> list[str] | None:
    """The ids ``--count`` asks for: ``<prefix>-<7 digits>`` from ``--first``, or generated
    ones like ``provision_device``'s. None for a single device added the usual way."""
    if args.count == 1 and args.id_prefix is None:
        return None
    from cloud.domain.security import new_token
    if args.prefix_first < 0:
        raise ValueError("--first must not be negative")
    if args.id_prefix is not None:
        # A gateway watch's id is its IMEI, digits only: the prefix is its first digits.
        sep = "" if getattr(args, "protocol", "openpers") != "openpers" else "-"
        return [f"{args.id_prefix}{sep}{i:07d}" for i in range(args.prefix_first, args.prefix_first + args.count)]
    return ["w" + new_token()[:15].replace("-", "x").replace("_", "y") for _ in range(args.count)]


def _find_tenant(sm, name_or_id: str):
    from sqlalchemy import select

    from cloud.store.models import Tenant
    with sm() as s:
        return s.scalar(select(Tenant).where(Tenant.name == name_or_id)) or (
            s.get(Tenant, int(name_or_id)) if name_or_id.isdigit() else None)


def cmd_device_add(args) -> int:
    from cloud.cli import _platform_db, _settings
    from cloud.domain.clock import SystemClock

    if args.count < 1:
        print("--count must be at least 1", file=sys.stderr)
        return 2
    if (args.count > 1 or args.id_prefix is not None) and (args.id or args.wearer is not None):
        print("--id and --wearer are for one device: not with --count or --id-prefix", file=sys.stderr)
        return 2
    settings = _settings(args)
    sm = _platform_db(args)
    tenant = _find_tenant(sm, args.tenant)
    if tenant is None:
        print(f"no tenant {args.tenant!r}", file=sys.stderr)
        return 2
    actor = f"cli:{getpass.getuser()}"
    try:
        ids = _device_ids(args)
        if ids is None:
            from cloud.domain.accounts import provision_device
            dev = provision_device(sm, SystemClock(), tenant.id, device_id=args.id, wearer_id=args.wearer,
                                   actor=actor, device_protocol=args.protocol)
            made = [(dev.device_id, dev.secret)]
        else:
            made = provision_devices(sm, SystemClock(), tenant.id, ids, actor=actor, device_protocol=args.protocol)
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    # One rewrite of the password file for the whole batch, after its commit.
    if settings.broker == "embedded" and not args.no_broker_sync:
        # Imported only here: it loads the argon2-hashing accounts module (a second of start-up).
        from cloud.platform import sync_broker_auth
        sync_broker_auth(settings)
    _print_devices(made, args.json)
    return 0


def _print_devices(made: list[tuple[str, str]], as_json: bool) -> None:
    if as_json:
        # One object a line, the admin API's shape: a harness reads the secrets from a pipe.
        sys.stdout.writelines(json.dumps({"id": d, "secret": secret}) + "\n" for d, secret in made)
        return
    for d, secret in made:
        print(f"device id: {d}\nsecret:    {secret}" if secret else
              f"device id: {d}\nsecret:    none (a gateway watch: its IMEI is its only identity, docs/gateway.md)")
    if any(secret for _, secret in made):
        print("(the secret is shown once; it is stored hashed)")


def cmd_device_rotate(args) -> int:
    from cloud.cli import _platform_db, _settings
    from cloud.domain.accounts import rotate_device_secret
    from cloud.domain.clock import SystemClock
    from cloud.platform import sync_broker_auth

    settings = _settings(args)
    sm = _platform_db(args)
    try:
        dev = rotate_device_secret(sm, SystemClock(), args.device_id, actor=f"cli:{getpass.getuser()}")
    except LookupError:
        print(f"no device {args.device_id!r}", file=sys.stderr)
        return 2
    if settings.broker == "embedded":
        # The running broker re-reads its files and drops the watch's session on the old secret.
        sync_broker_auth(settings)
    else:
        print("external broker: deploy the regenerated password file from the data directory", file=sys.stderr)
    print(f"device id: {dev.device_id}\nsecret:    {dev.secret}\n"
          "(the old secret no longer works; the new one is shown once and stored hashed)")
    return 0


def add_device_commands(sub, common) -> None:
    sp = sub.add_parser("device", help="devices")
    devsub = sp.add_subparsers(dest="device_command", required=True)
    add = devsub.add_parser("add", help="provision devices: prints each one's id and secret once")
    common(add)
    add.add_argument("--tenant", required=True, help="tenant name or id")
    add.add_argument("--id", help="device id (usually the IMEI); generated if absent")
    add.add_argument("--wearer", type=int)
    add.add_argument("--protocol", choices=("openpers", "setracker", "iw"), default="openpers",
                     help="openpers: our watch over MQTT; setracker or iw: an off-the-shelf watch through the "
                          "watch gateway, registered by the IMEI it sends (--id), with no secret")
    add.add_argument("--count", type=int, default=1, metavar="N",
                     help="provision this many devices in one transaction, with one broker reload")
    add.add_argument("--id-prefix", help="with --count: ids <prefix>-<7 digits> (else generated)")
    add.add_argument("--first", dest="prefix_first", type=int, default=0, metavar="N",
                     help="with --id-prefix: the number of the first id")
    add.add_argument("--json", action="store_true",
                     help='print one JSON object a line, {"id": ..., "secret": ...}, and nothing else')
    add.add_argument("--no-broker-sync", action="store_true",
                     help="leave the broker's password file alone (a harness that provisions in several "
                          "calls and writes it once afterwards)")
    add.set_defaults(func=cmd_device_add)
    rot = devsub.add_parser("rotate", help="give a device a new secret (printed once); the old one stops working")
    common(rot)
    rot.add_argument("device_id")
    rot.set_defaults(func=cmd_device_rotate)
