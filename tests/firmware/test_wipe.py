"""A factory reset must not make the watch repeat its message ids.

The real firmware under `micropython` -> hwsim -> Mosquitto (generated passwords
and ACL) -> the real cloud. An erased flash restarts the boot counter at 1, so
"<boot>.<seq>" ids repeated ones the cloud had stored, and the cloud, which
de-duplicates alerts on (device, mid), took the next SOS for a retransmission:
"Help is coming" on the wrist, no case for any operator. Ids now carry an
installation id drawn at the first boot of a fresh flash (app/flash.py), so the
second alarm is new to a cloud that compares nothing but the ids."""
from __future__ import annotations

import time

import httpx
from sqlalchemy import select

from cloud.seed import DEMO_OPERATOR
from cloud.store.models import Alert, AlertCase, Command, Device, LocationPoint
from hwsim.runner import Watch
from hwsim.scenario import load


def display(text: str):
    return lambda ev: ev.get("type") == "display" and ev.get("text") == text


def wait_db(stack, probe, what: str, timeout: float = 20):
    """Polls the cloud's database until ``probe(session)`` is true (the cloud's own events)."""
    deadline = time.monotonic() + timeout
    while True:
        with stack.services.sm() as s:
            if probe(s):
                return
        assert time.monotonic() < deadline, f"the cloud never saw {what}"
        time.sleep(0.1)


def test_sos_after_a_factory_reset_opens_a_new_case_with_new_ids(stack):
    device_id = stack.seed.device_id

    def status_of(install):
        # The cloud has this installation's status: the watch is connected and its
        # first message of the boot is made, so the next id is the alert's.
        def probe(s):
            st = s.get(Device, device_id).last_status
            return bool(st) and st["mid"].startswith(install + ".")
        return probe

    def stored():
        with stack.services.sm() as s:
            alerts = s.execute(select(Alert.mid, Alert.case_id, Alert.kind).order_by(Alert.id)).all()
            return alerts, set(s.scalars(select(LocationPoint.mid)))

    with Watch(device_id, stack.seed.device_secret, scenario=load("sos_demo"),
               broker=(stack.settings.mqtt_host, stack.settings.mqtt_tls_port), ca=stack.broker.tls.cafile) as watch, \
            httpx.Client(base_url=stack.url) as api:
        csrf = {"X-CSRF-Token": api.post("/api/auth/login", json={
            "username": DEMO_OPERATOR[0], "password": DEMO_OPERATOR[1]}).json()["csrf_token"]}

        # 1. SOS: a case, and the watch is told help is coming.
        assert watch.wait_for(lambda ev: ev.get("type") == "log" and ev["line"].startswith("boot 1 install "), 20)
        old_install = (watch.flash_dir / "install").read_text()
        wait_db(stack, status_of(old_install), "the first status")
        watch.press("red", hold_s=1.5)
        assert watch.wait_display("Help is coming", timeout=30), watch.displays
        (case,) = api.get("/api/cases").json()
        assert case["kind"] == "sos"

        # 2. The operator resolves it; the watch goes back to idle and acks that,
        # so nothing is left for the broker to deliver after the reset.
        r = api.post(f"/api/cases/{case['id']}/resolve", headers=csrf,
                     json={"outcome": "wearer_ok", "note": "before the factory reset"})
        assert r.status_code == 200, r.text
        assert watch.wait_for(display("Alarm closed"), timeout=20), watch.displays
        wait_db(stack, lambda s: any(c.payload.get("stage") == "closed" and c.status == "acked"
                                     for c in s.scalars(select(Command).where(Command.type == "alert_ack"))),
                "the watch's ack of the closed stage")

        # Every id the watch made so far is "<install>.<boot>.<seq>" under that install id.
        alerts_before, locs_before = stored()
        (first_mid, first_case, _), = alerts_before
        mids_before = {first_mid} | locs_before
        assert all(m.startswith(old_install + ".1.") for m in mids_before), (old_install, mids_before)

        # 3. Factory reset: power off, flash erased and reflashed, power on.
        mark = len(watch.events)
        watch.factory_reset()
        boot = watch.wait_for(lambda ev: ev.get("type") == "log" and ev["line"].startswith("boot "),
                              timeout=20, start=mark)
        assert boot and boot["line"].startswith("boot 1 install "), boot  # the counter starts again
        new_install = (watch.flash_dir / "install").read_text()
        assert new_install != old_install and new_install in boot["line"]

        # 4. SOS again, at the same point of the boot as the first: a new case, and
        # the watch shows the cloud's ack for it.
        wait_db(stack, status_of(new_install), "the status after the reset")
        press = len(watch.events)
        watch.press("red", hold_s=1.5)
        assert watch.wait_for(display("Calling for help"), timeout=10, start=press), watch.displays
        assert watch.wait_for(display("Help is coming"), timeout=30, start=press), watch.displays[-5:]
        cases = api.get("/api/cases").json()
        assert [c["kind"] for c in cases] == ["sos"] and cases[0]["id"] != case["id"], cases
        second_case = cases[0]

    alerts, _ = stored()
    assert len(alerts) == 2, alerts  # both alerts stored, each with its own case
    (_, case1, _), (second_mid, case2, kind2) = alerts
    assert (case1, case2, kind2) == (first_case, second_case["id"], "sos")
    # The erased watch made the same boot and sequence numbers as before the reset
    # (under "<boot>.<seq>" ids the cloud took this alarm for the first one again)...
    assert second_mid.split(".", 1)[1] == first_mid.split(".", 1)[1], (first_mid, second_mid)
    # ...but its ids cannot repeat one made before.
    assert second_mid not in mids_before and second_mid.startswith(new_install + ".1.")
    assert not any(m.startswith(new_install + ".") for m in mids_before)
    with stack.services.sm() as s:
        opened = s.get(AlertCase, second_case["id"])
        assert opened.first_mid == second_mid and opened.status != "resolved"
        assert s.get(AlertCase, first_case).status == "resolved"
        acks = [c.payload for c in s.scalars(select(Command).where(Command.type == "alert_ack"))]
    assert any(a["ref"] == second_mid and a["stage"] == "received" for a in acks), acks
