"""The platform CLI (`pers tenant add`, `pers operator add`, `pers device add|rotate`)
from a second process while the service runs, as the platform team, an
installer or the service desk would use it: on SQLite with the service's data
directory, on PostgreSQL with PERS_DATABASE_URL as well, as a deployment sets it."""
import json
import os
import re
import subprocess
import sys
import time

from sqlalchemy import select

from cloud.seed import DEMO_OPERATOR
from cloud.store.models import AuditEntry, Device
from tests.cloud_helpers import device_session


def cli_env(stack) -> dict:
    env = dict(os.environ)
    # the broker's config the CLI rewrites keeps the stack's TLS listener
    env["PERS_MQTT_TLS_PORT"] = str(stack.settings.mqtt_tls_port)
    env["PERS_MQTT_TLS_HOST"] = stack.settings.mqtt_tls_host
    if stack.settings.database_url:
        env["PERS_DATABASE_URL"] = stack.settings.database_url
    return env


def pers(stack, *args):
    proc = subprocess.run([sys.executable, "-m", "cloud.cli", "device", *args,
                           "--data-dir", str(stack.settings.data_dir),
                           "--mqtt-port", str(stack.settings.mqtt_port)],
                          capture_output=True, text=True, timeout=60, env=cli_env(stack))
    return proc


def connect(stack, device_id, secret):
    return device_session(stack.broker, device_id, secret)


def secret_of(output: str) -> str:
    return re.search(r"^secret:\s+(\S+)$", output, re.M).group(1)


def test_rotate_from_the_cli_ends_the_old_session_and_only_the_new_secret_connects(stack):
    watch, events = connect(stack, stack.seed.device_id, stack.seed.device_secret)
    assert events.get(timeout=5) == ("connect", False)

    proc = pers(stack, "rotate", stack.seed.device_id)
    assert proc.returncode == 0, proc.stderr
    new_secret = secret_of(proc.stdout)
    assert new_secret != stack.seed.device_secret
    assert events.get(timeout=10)[0] == "disconnect"  # the running broker dropped the old session
    watch.loop_stop()

    old, old_events = connect(stack, stack.seed.device_id, stack.seed.device_secret)
    assert old_events.get(timeout=5) == ("connect", True)  # refused
    old.loop_stop()
    fresh, fresh_events = connect(stack, stack.seed.device_id, new_secret)
    assert fresh_events.get(timeout=5) == ("connect", False)
    fresh.disconnect()
    fresh.loop_stop()


def test_add_prints_a_working_secret_and_unknown_devices_are_refused(stack):
    proc = pers(stack, "add", "--tenant", "Les Tilleuls care home", "--id", "864000000000077")
    assert proc.returncode == 0, proc.stderr
    # The broker's reload (SIGHUP) is asynchronous: give it a moment to read the new file.
    for _ in range(20):
        c, events = connect(stack, "864000000000077", secret_of(proc.stdout))
        if events.get(timeout=10) == ("connect", False):
            break
        c.loop_stop()
        time.sleep(0.25)
    else:
        raise AssertionError("the new device's secret never worked")
    c.disconnect()
    c.loop_stop()

    proc = pers(stack, "rotate", "no-such-watch")
    assert proc.returncode == 2 and "no device 'no-such-watch'" in proc.stderr
    proc = pers(stack, "add", "--tenant", "No Such Tenant")
    assert proc.returncode == 2 and "no tenant" in proc.stderr


def wait_connects(stack, device_id, secret):
    # The broker's reload (SIGHUP) is asynchronous: give it a moment to read the new file.
    for _ in range(20):
        c, events = connect(stack, device_id, secret)
        if events.get(timeout=10) == ("connect", False):
            c.disconnect()
            c.loop_stop()
            return
        c.loop_stop()
        time.sleep(0.25)
    raise AssertionError(f"the secret of {device_id} never worked")


def test_add_many_in_one_call_prints_json_secrets_that_work_and_is_all_or_nothing(stack):
    """What the fleet simulator and the benchmarks provision with: one process, one
    transaction, one reload of the broker for the batch."""
    proc = pers(stack, "add", "--tenant", "Les Tilleuls care home", "--count", "5", "--id-prefix", "batch",
                "--first", "3", "--json")
    assert proc.returncode == 0, proc.stderr
    made = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [d["id"] for d in made] == [f"batch-{i:07d}" for i in range(3, 8)]
    assert len({d["secret"] for d in made}) == 5
    wait_connects(stack, made[0]["id"], made[0]["secret"])
    wait_connects(stack, made[-1]["id"], made[-1]["secret"])
    with stack.services.sm() as s:
        audited = s.scalars(select(AuditEntry.target).where(AuditEntry.action == "device.provisioned",
                                                            AuditEntry.target.like("device:batch-%"))).all()
    assert sorted(audited) == [f"device:{d['id']}" for d in made]

    # one id of the batch is taken: nothing of it is created
    proc = pers(stack, "add", "--tenant", "Les Tilleuls care home", "--count", "3", "--id-prefix", "batch",
                "--first", "7", "--json")
    assert proc.returncode == 2 and "batch-0000007 already exists" in proc.stderr and proc.stdout == ""
    with stack.services.sm() as s:
        assert s.get(Device, "batch-0000008") is None

    # generated ids without a prefix; the text form names every device
    proc = pers(stack, "add", "--tenant", "Les Tilleuls care home", "--count", "2")
    assert proc.returncode == 0, proc.stderr
    assert len(re.findall(r"^secret:\s+\S+$", proc.stdout, re.M)) == 2
    for bad in (["--count", "0"], ["--count", "2", "--id", "x"], ["--count", "2", "--id-prefix", "pers"]):
        proc = pers(stack, "add", "--tenant", "Les Tilleuls care home", *bad)
        assert proc.returncode == 2 and proc.stderr, bad


def test_onboard_a_tenant_and_its_admin_who_can_log_in_and_sees_only_their_tenant(stack):
    base = [sys.executable, "-m", "cloud.cli"]
    where = ["--data-dir", str(stack.settings.data_dir)]
    run = lambda *a, stdin=None: subprocess.run(base + list(a) + where, input=stdin,  # noqa: E731
                                                capture_output=True, text=True, timeout=60, env=cli_env(stack))
    proc = run("tenant", "add", "Acme Lone Workers", "--centre", "Lyon Alarm Centre")
    assert proc.returncode == 0, proc.stderr
    assert run("tenant", "add", "Acme Lone Workers").returncode == 2  # unique
    assert "no call centre" in run("tenant", "add", "X", "--centre", "Atlantis").stderr

    assert "at least 10" in run("operator", "add", "--tenant", "Acme Lone Workers", "--username", "acme-admin",
                                "--role", "admin", "--password-stdin", stdin="short\n").stderr
    proc = run("operator", "add", "--tenant", "Acme Lone Workers", "--username", "acme-admin", "--role", "admin",
               "--centre", "Lyon Alarm Centre", "--password-stdin", stdin="a long enough secret\n")
    assert proc.returncode == 0, proc.stderr
    assert "secret" not in proc.stdout + proc.stderr  # the password is never echoed

    # The demo tenant has an open case and a device: what the new tenant must not see.
    demo_device = stack.seed.device_id
    sos = json.dumps({"v": 1, "mid": "9.1", "ts": None, "kind": "sos", "trigger": "button"}).encode()
    case_id = stack.services.ingestor.accept(f"pers/v1/{demo_device}/alert", sos).case_id
    assert case_id is not None

    import httpx
    with httpx.Client(base_url=stack.url) as api:
        r = api.post("/api/auth/login", json={"username": "acme-admin", "password": "a long enough secret"})
        assert r.status_code == 200 and r.json()["role"] == "admin"
        assert api.get("/api/admin/tenant").json()["name"] == "Acme Lone Workers"
        assert api.get("/api/cases").json() == []  # the demo tenant's cases are not theirs
        assert api.get(f"/api/cases/{case_id}").status_code == 404
        assert api.get("/api/admin/devices").json()["items"] == []
        assert api.get(f"/api/admin/devices/{demo_device}").status_code == 404
    with httpx.Client(base_url=stack.url) as api:  # and the demo tenant does see them: the refusal means something
        assert api.post("/api/auth/login", json=dict(zip(("username", "password"), DEMO_OPERATOR))).status_code == 200
        assert [c["id"] for c in api.get("/api/cases").json()] == [case_id]

    from sqlalchemy import select

    from cloud.store.models import AuditEntry
    with stack.services.sm() as s:
        actions = {a.action for a in s.scalars(select(AuditEntry))}
    assert {"tenant.created", "operator.created"} <= actions
