"""``pers``: run, provision and simulate OpenPERS."""
from __future__ import annotations

import argparse
import getpass
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

from sqlalchemy import select

from cloud.cli_device import add_device_commands
from cloud.cli_vsim import add_vsim_commands
from cloud.logs import setup_logging
from cloud.settings import Settings

REPO = Path(__file__).resolve().parents[1]
DEMO_SCENARIO = REPO / "hwsim" / "scenarios" / "sos_demo.toml"
log = logging.getLogger("pers.cli")


def _settings(args) -> Settings:
    overrides = {}
    if getattr(args, "data_dir", None):
        overrides["data_dir"] = Path(args.data_dir)
    if getattr(args, "http_port", None):
        overrides["http_port"] = args.http_port
    if getattr(args, "mqtt_port", None):
        overrides["mqtt_port"] = args.mqtt_port
    if getattr(args, "mqtt_tls_port", None) is not None:
        overrides["mqtt_tls_port"] = args.mqtt_tls_port
    return Settings(**overrides)


def cmd_serve(args) -> int:
    from cloud.runtime import Stack, tune_gc
    settings = _settings(args)
    setup_logging(settings.log_json)
    stack = Stack(settings)
    stack.start()
    tune_gc()
    print(f"OpenPERS cloud on {stack.url} (broker {settings.broker} on {settings.mqtt_host}:{settings.mqtt_port})"
          + (f", watch gateway on {settings.gateway_host}:{settings.gateway_port}" if settings.gateway_port else ""),
          flush=True)
    _wait_for_signal()
    stack.stop()
    return 0


def cmd_broker(args) -> int:
    """Only the embedded broker, supervised: lets the cloud run (and be restarted,
    or killed in a chaos run) as a separate process with PERS_BROKER=external."""
    from cloud.runtime import Stack, prepare
    settings = _settings(args)
    setup_logging(settings.log_json)
    prepare(settings)
    stack = Stack(settings.model_copy(update={"broker": "embedded"}))
    stack.start_broker()
    print(f"Mosquitto on {settings.mqtt_host}:{settings.mqtt_port} (files in {stack.broker.dir})", flush=True)
    _wait_for_signal()
    stack.stop()
    return 0


def gateway_line(settings) -> str:
    if settings.gateway_port is None:
        return ""
    return (f"\n    Watch gateway: tcp://{settings.gateway_host}:{settings.gateway_port} (SeTracker and IW watches, "
            "registered with pers device add --protocol)")


def cmd_demo(args) -> int:
    from cloud.domain.clock import SystemClock
    from cloud.runtime import Stack, prepare, tune_gc
    from cloud.seed import DEMO_ADMIN, DEMO_OPERATOR, DEMO_OTHER_OPERATOR, DEMO_SUPERVISOR, seed_demo
    from cloud.store.db import make_engine, make_sessionmaker

    settings = _settings(args)
    if not args.data_dir:
        settings = settings.model_copy(update={"data_dir": Path("var/demo")})
    # On loopback, for trying it out: the API's documentation open to all (production: admins),
    # and the watches' TLS listener on loopback too.
    settings = settings.model_copy(update={"api_docs": "public", "mqtt_tls_host": settings.mqtt_host})
    if not args.keep and settings.data_dir.exists():
        shutil.rmtree(settings.data_dir)
    setup_logging(settings.log_json, logging.WARNING)
    prepare(settings)
    seed = seed_demo(make_sessionmaker(make_engine(settings.db_url)), SystemClock(), settings.data_dir)
    stack = Stack(settings)
    stack.start_broker()
    stack.start_cloud()
    tune_gc()
    gw = gateway_line(settings)
    # The watch speaks TLS through its modem, verifying the broker against the CA it is
    # flashed with; the plaintext port is the cloud's own, on loopback.
    tls = stack.broker.tls if stack.broker is not None else None
    watch_port = settings.mqtt_tls_port if tls is not None else settings.mqtt_port
    watch_url = f"{'mqtts' if tls else 'mqtt'}://{settings.mqtt_host}:{watch_port}"
    print(f"""
  OpenPERS demo is running.
    Console:   {stack.url}/
    Log in as: {DEMO_OPERATOR[0]} / {DEMO_OPERATOR[1]}
               ({DEMO_OTHER_OPERATOR[0]} / {DEMO_OTHER_OPERATOR[1]} is another tenant's operator: they see nothing)
    Supervisor: {stack.url}/supervisor as {DEMO_SUPERVISOR[0]} / {DEMO_SUPERVISOR[1]}
    Admin:      {stack.url}/admin as {DEMO_ADMIN[0]} / {DEMO_ADMIN[1]}
    API docs:  {stack.url}/docs
    Broker:    {watch_url} (Mosquitto, per-device passwords and ACL; the watch's link){gw}
  The simulated watch of Jeanne Martin (real firmware under MicroPython) presses SOS in a few seconds.
  Acknowledge the case in the console; the watch shows what the operator sends. Ctrl-C stops everything.
""", flush=True)
    watch = subprocess.Popen(
        [sys.executable, "-m", "hwsim", "run", str(args.scenario), "--broker",
         f"{settings.mqtt_host}:{watch_port}", "--device-id", seed.device_id,
         "--flash-dir", str((settings.data_dir / "watch-flash").resolve()),
         "--events", str((settings.data_dir / "watch-events.jsonl").resolve())]
        + (["--ca", str(tls.cafile.resolve())] if tls else []) + ([] if args.check else ["--stay"]),
        env={**os.environ, "HWSIM_SECRET": seed.device_secret}, cwd=REPO)
    rc = 0
    try:
        if args.check:
            rc = watch.wait(timeout=args.timeout)
            print(f"demo check: the watch scenario {'passed' if rc == 0 else 'FAILED'}", flush=True)
        else:
            _wait_for_signal(watch)
    except subprocess.TimeoutExpired:
        print("demo check: timed out", flush=True)
        rc = 1
    finally:
        if watch.poll() is None:
            watch.send_signal(signal.SIGINT)
            try:
                watch.wait(timeout=10)
            except subprocess.TimeoutExpired:
                watch.kill()
        stack.stop()
    return rc


def cmd_db_upgrade(args) -> int:
    from cloud.platform import prepare
    prepare(_settings(args))
    print("database at the latest schema")
    return 0


def cmd_quarantine_list(args) -> int:
    """Every tenant's dead letters, and those from no known device (only the service's
    own operators see these: no tenant's staff can)."""
    from cloud.domain.quarantine import listing
    rows = listing(_platform_db(args), None, limit=args.limit)
    if not rows:
        print("no quarantined messages")
    for d in rows:
        print(f"#{d['id']} {d['received_at']} x{d['count']} {d['reason']} {d['topic']}"
              f"{' case ' + str(d['case_id']) if d['case_id'] else ''}\n    {d['detail']}\n    {d['payload'][:300]!r}")
    return 0


def _platform_db(args):
    """The migrated database (cloud/platform.py: not the runtime, which loads the whole
    web app first, seconds for a command that needs only the database)."""
    from cloud.platform import prepare
    from cloud.store.db import make_engine, make_sessionmaker

    settings = _settings(args)
    prepare(settings)
    return make_sessionmaker(make_engine(settings.db_url))


def cmd_tenant_add(args) -> int:
    """Onboard a B2B partner: the tenant and its contract (call centres, in order).
    The platform's own act, so it is a CLI and not an API any tenant's admin could call."""
    from cloud.domain.clock import SystemClock
    from cloud.domain.uow import transaction
    from cloud.store.models import AuditEntry, Contract, Tenant

    sm = _platform_db(args)
    with transaction(sm) as tx:
        s = tx.session
        if s.scalar(select(Tenant).where(Tenant.name == args.name)) is not None:
            print(f"tenant {args.name!r} already exists", file=sys.stderr)
            return 2
        centres = []
        for name in args.centre:
            centre = s.scalar(_centre_named(name))
            if centre is None:
                print(f"no call centre {name!r}", file=sys.stderr)
                return 2
            centres.append(centre)
        tenant = Tenant(name=args.name, webhook_url=args.webhook)
        s.add(tenant)
        s.flush()
        s.add_all([Contract(tenant_id=tenant.id, centre_id=c.id, rank=i) for i, c in enumerate(centres)])
        s.add(AuditEntry(at=SystemClock().now(), actor=f"cli:{getpass.getuser()}", action="tenant.created",
                         tenant_id=tenant.id, target=f"tenant:{tenant.id}",
                         detail={"name": args.name, "centres": [c.name for c in centres]}))
        tenant_id = tenant.id
    print(f"tenant {tenant_id}: {args.name}" + (f" (centres: {', '.join(args.centre)})" if args.centre else
                                                "  (no call centre yet: its alarms cannot be routed)"))
    return 0


def _centre_named(name: str):
    """Centre names are unique per tenant, not platform-wide: the platform's own centre
    (no owner) first, then the oldest."""
    from cloud.store.models import CallCentre
    return (select(CallCentre).where(CallCentre.name == name)
            .order_by(CallCentre.owner_tenant_id.is_not(None), CallCentre.id).limit(1))


def cmd_operator_add(args) -> int:
    """An operator, supervisor or admin account. The password comes from stdin
    (--password-stdin) or a prompt, never from the command line (it would sit in
    the shell history and in ps)."""
    from cloud.domain.accounts import AccountService
    from cloud.domain.clock import SystemClock
    from cloud.domain.uow import transaction
    from cloud.store.models import AuditEntry, Operator, Tenant

    sm = _platform_db(args)
    with sm() as s:
        tenant = s.scalar(select(Tenant).where(Tenant.name == args.tenant)) or (
            s.get(Tenant, int(args.tenant)) if args.tenant.isdigit() else None)
        centre = s.scalar(_centre_named(args.centre)) if args.centre else None
        taken = s.scalar(select(Operator).where(Operator.username == args.username)) is not None
    if tenant is None:
        print(f"no tenant {args.tenant!r}", file=sys.stderr)
        return 2
    if args.centre and centre is None:
        print(f"no call centre {args.centre!r}", file=sys.stderr)
        return 2
    if taken:
        print(f"username {args.username!r} is taken", file=sys.stderr)
        return 2
    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else getpass.getpass("password: ")
    if len(password) < 10:
        print("the password must have at least 10 characters", file=sys.stderr)
        return 2
    clock = SystemClock()
    op = AccountService(sm, clock).create_operator(
        tenant.id, args.username, password, display_name=args.name, role=args.role,
        centre_id=centre.id if centre else None)
    with transaction(sm) as tx:
        tx.session.add(AuditEntry(at=clock.now(), actor=f"cli:{getpass.getuser()}", action="operator.created",
                                  tenant_id=tenant.id, target=f"operator:{op.id}",
                                  detail={"username": args.username, "role": args.role}))
    print(f"{args.role} {args.username} created in {tenant.name}")
    return 0


def cmd_sim_run(args, extra: list[str]) -> int:
    from hwsim.cli import main as hwsim_main
    return hwsim_main(["run", *extra])


def cmd_sim_fleet(args, extra: list[str]) -> int:
    from hwsim.fleet import main as fleet_main
    return fleet_main(extra)


def cmd_flash(args, extra: list[str]) -> int:
    from cloud.flash import main as flash_main
    return flash_main(extra)


def _wait_for_signal(child: subprocess.Popen | None = None) -> None:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(0.5):
        if child is not None and child.poll() is not None:
            print(f"the simulated watch exited ({child.returncode}); the cloud keeps running", flush=True)
            child = None


def _common(sp) -> None:
    sp.add_argument("--data-dir", help="data directory (default: $PERS_DATA_DIR or ./var)")
    sp.add_argument("--http-port", type=int)
    sp.add_argument("--mqtt-port", type=int)
    sp.add_argument("--mqtt-tls-port", type=int, help="the TLS listener the watches use (0: none)")


def _add_run_commands(sub) -> None:
    sp = sub.add_parser("serve", help="run the broker (embedded) and the cloud with its console")
    _common(sp)
    sp.set_defaults(func=cmd_serve)

    sp = sub.add_parser("broker", help="run only the embedded Mosquitto (then `PERS_BROKER=external pers serve`)")
    _common(sp)
    sp.set_defaults(func=cmd_broker)

    sp = sub.add_parser("demo", help="run everything with demo data and a simulated watch that presses SOS")
    _common(sp)
    sp.add_argument("--keep", action="store_true", help="keep the previous demo data")
    sp.add_argument("--scenario", type=Path, default=DEMO_SCENARIO)
    sp.add_argument("--check", action="store_true",
                    help="exit when the watch scenario ends (0 if the watch showed the cloud's ack)")
    sp.add_argument("--timeout", type=float, default=120)
    sp.set_defaults(func=cmd_demo)


def _add_maintenance_commands(sub) -> None:
    sp = sub.add_parser("db", help="database maintenance")
    dbsub = sp.add_subparsers(dest="db_command", required=True)
    up = dbsub.add_parser("upgrade", help="apply migrations")
    _common(up)
    up.set_defaults(func=cmd_db_upgrade)

    sp = sub.add_parser("quarantine", help="messages that could not be stored (dead letters)")
    qsub = sp.add_subparsers(dest="quarantine_command", required=True)
    ql = qsub.add_parser("list", help="the newest dead letters of every tenant, with their reason and bytes")
    _common(ql)
    ql.add_argument("--limit", type=int, default=50)
    ql.set_defaults(func=cmd_quarantine_list)


def _add_account_commands(sub) -> None:
    sp = sub.add_parser("tenant", help="tenants (B2B partners)")
    tsub = sp.add_subparsers(dest="tenant_command", required=True)
    tadd = tsub.add_parser("add", help="onboard a tenant with its contracted call centres, in order")
    _common(tadd)
    tadd.add_argument("name")
    tadd.add_argument("--centre", action="append", default=[], help="a call centre's name; repeat, best first")
    tadd.add_argument("--webhook", help="URL the tenant's case notifications are POSTed to")
    tadd.set_defaults(func=cmd_tenant_add)

    sp = sub.add_parser("operator", help="operator, supervisor and admin accounts")
    osub = sp.add_subparsers(dest="operator_command", required=True)
    oadd = osub.add_parser("add", help="create an account (the password is prompted for)")
    _common(oadd)
    oadd.add_argument("--tenant", required=True, help="tenant name or id")
    oadd.add_argument("--username", required=True)
    oadd.add_argument("--name", help="display name")
    oadd.add_argument("--role", choices=("operator", "supervisor", "admin"), default="operator")
    oadd.add_argument("--centre", help="the call centre the operator works in")
    oadd.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    oadd.set_defaults(func=cmd_operator_add)


def _add_passthrough_commands(sub) -> None:
    """Commands whose arguments belong to another program's parser (``pers sim fleet -- --help``)."""
    sp = sub.add_parser("flash", add_help=False,
                        help="put the firmware on a board (image or files) and provision it (`pers flash -- --help`)")
    sp.set_defaults(func=cmd_flash, passthrough=True)

    sp = sub.add_parser("sim", help="the simulated watch (hwsim)")
    simsub = sp.add_subparsers(dest="sim_command", required=True)
    run = simsub.add_parser("run", help="run the real firmware in a scenario (see `pers sim run -- --help`)",
                            add_help=False)
    run.set_defaults(func=cmd_sim_run, passthrough=True)
    fleet = simsub.add_parser("fleet", help="N light device twins against a broker (see `pers sim fleet -- --help`)",
                              add_help=False)
    fleet.set_defaults(func=cmd_sim_fleet, passthrough=True)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pers", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    _add_run_commands(sub)
    _add_maintenance_commands(sub)
    add_device_commands(sub, _common)
    add_vsim_commands(sub, _common)
    _add_account_commands(sub)
    _add_passthrough_commands(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if getattr(args, "passthrough", False):
        # `pers sim fleet -- --help`: the "--" only keeps pers's parser off the options;
        # passed on, it would make the next program read "--help" as a positional.
        return args.func(args, extra[1:] if extra[:1] == ["--"] else extra)
    if extra:
        parser.error(f"unrecognised arguments: {' '.join(extra)}")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
