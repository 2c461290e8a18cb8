"""The alarm centre's whole workflow, with nothing stood in: an SOS from the real
firmware (under `micropython`, in hwsim) through Mosquitto to the cloud. It is
routed to the centre that covers the wearer, escalated to the backup when nobody
claims it, claimed there, the watch dials the backup centre back, and the case is
resolved with an outcome. The case timeline and the audit log tell it all, in order."""
import time

import httpx
from sqlalchemy import select

from cloud.domain.accounts import AccountService
from cloud.domain.clock import SystemClock
from cloud.seed import DEMO_OPERATOR
from cloud.store.models import AlertCase, AuditEntry, CallCentre, CaseEvent, Command, Contract
from hwsim.runner import Watch
from hwsim.scenario import load

LYON = {"type": "circle", "lat": 45.76, "lon": 4.84, "radius_m": 30_000}
MARSEILLE = {"type": "circle", "lat": 43.30, "lon": 5.37, "radius_m": 30_000}
BACKUP_OPERATOR = ("paris-op", "paris-demo-pw")


def centres_for_routing(sm, seed):
    """The tenant's contract lists Marseille first, then Lyon, then a national backup
    in Paris. Only Lyon covers the wearer (in Lyon); Paris covers France."""
    with sm() as s:
        lyon = s.scalar(select(CallCentre).where(CallCentre.name == "Lyon Alarm Centre"))
        lyon.areas = [LYON]
        marseille = CallCentre(name="Marseille Alarm Centre", phone="+33491000000", areas=[MARSEILLE])
        paris = CallCentre(name="Paris National Backup", phone="+33100000000", countries=["FR"])
        s.add_all([marseille, paris])
        s.flush()
        s.execute(Contract.__table__.update().where(Contract.tenant_id == seed.tenant_id).values(rank=1))
        s.add_all([Contract(tenant_id=seed.tenant_id, centre_id=marseille.id, rank=0),
                   Contract(tenant_id=seed.tenant_id, centre_id=paris.id, rank=2)])
        s.commit()
        paris_id = paris.id
    AccountService(sm, SystemClock()).create_operator(
        seed.tenant_id, *BACKUP_OPERATOR, display_name="Paul (Paris backup)", centre_id=paris_id)


def centre_name(stack, case_id):
    with stack.services.sm() as s:
        case = s.get(AlertCase, case_id)
        return s.get(CallCentre, case.centre_id).name if case.centre_id else None


def login(api, user):
    r = api.post("/api/auth/login", json={"username": user[0], "password": user[1]})
    assert r.status_code == 200, r.text
    return {"X-CSRF-Token": r.json()["csrf_token"]}


def test_sos_is_routed_escalated_claimed_called_back_and_resolved_with_a_full_audit(stack_factory):
    stack = stack_factory(before_start=centres_for_routing, escalate_unclaimed_s=6, tick_s=0.25)
    with Watch(stack.seed.device_id, stack.seed.device_secret, scenario=load("sos_demo"),
               broker=(stack.settings.mqtt_host, stack.settings.mqtt_tls_port), ca=stack.broker.tls.cafile) as watch, \
            httpx.Client(base_url=stack.url) as lyon_api, httpx.Client(base_url=stack.url) as paris_api:
        # The Lyon operator is on shift but busy: present, and never claims.
        login(lyon_api, DEMO_OPERATOR)
        paris = login(paris_api, BACKUP_OPERATOR)
        assert watch.wait_for(lambda ev: ev.get("type") == "link" and ev.get("state") == "up", timeout=30)
        time.sleep(max(0.0, 3.0 - watch.rec.now()))
        watch.press("red", hold_s=1.5, wait=True)
        assert watch.wait_display("Help is coming", timeout=30), watch.displays

        [case] = lyon_api.get("/api/cases").json()
        assert case["kind"] == "sos" and case["wearer"]["name"] == "Jeanne Martin"
        # Routed by the GNSS fix in Lyon, not by contract order (Marseille is first).
        assert centre_name(stack, case["id"]) == "Lyon Alarm Centre"

        # Nobody claims: after escalate_unclaimed_s the ticker moves it to the backup.
        deadline = time.monotonic() + 20
        while centre_name(stack, case["id"]) != "Paris National Backup" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert centre_name(stack, case["id"]) == "Paris National Backup"

        r = paris_api.post(f"/api/cases/{case['id']}/claim", headers=paris)
        assert r.status_code == 200, r.text
        assert watch.wait_display("An operator is with you", timeout=20), watch.displays

        # Call back: with no number given, the watch dials the centre that holds the case.
        r = paris_api.post(f"/api/cases/{case['id']}/call", headers=paris, json={})
        assert r.status_code == 200, r.text
        dial = watch.wait_for(lambda ev: ev.get("type") == "call" and ev.get("state") == "dial", timeout=20)
        assert dial is not None and dial["number"] == "+33100000000", watch.events

        # The busy Lyon operator cannot resolve a case claimed in Paris.
        assert lyon_api.post(f"/api/cases/{case['id']}/resolve", headers=login(lyon_api, DEMO_OPERATOR),
                             json={"outcome": "other"}).status_code == 403
        r = paris_api.post(f"/api/cases/{case['id']}/resolve", headers=paris,
                           json={"outcome": "contact_came", "note": "daughter arrived, wearer fine"})
        assert r.status_code == 200 and r.json()["status"] == "resolved", r.text
        assert watch.wait_for(lambda ev: ev.get("type") == "display" and ev.get("text") == "Alarm closed",
                              timeout=20), watch.displays

        # Every command the cloud sent (received, operator, call, closed) is acked by the watch.
        deadline = time.monotonic() + 20
        while [e.action for e in story(stack, case["id"])].count("command_acked") < 4 and time.monotonic() < deadline:
            time.sleep(0.1)

    check_the_timeline(stack, story(stack, case["id"]))
    check_the_audit_and_the_case(stack, case["id"])


def story(stack, case_id):
    with stack.services.sm() as s:
        return s.scalars(select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.id)).all()


def check_the_timeline(stack, events):
    actions = [e.action for e in events]
    # The story, in order; nothing missing, nothing twice.
    milestones = ["opened", "routed", "escalated", "claimed", "call_back", "resolved"]
    assert [a for a in actions if a in milestones] == milestones, [(e.action, e.detail) for e in events]
    assert actions.count("command_acked") == 4, actions
    assert actions.index("command_acked") < actions.index("escalated")  # "received" came first
    # Stamps never go back in time, and each step names who did it.
    assert all(a.at <= b.at for a, b in zip(events, events[1:])), [(e.action, e.at) for e in events]
    by_action = {e.action: e for e in events}
    assert by_action["opened"].actor == f"device:{stack.seed.device_id}"
    assert by_action["escalated"].actor == "system"
    assert by_action["escalated"].detail["level"] == 1
    assert by_action["claimed"].actor == by_action["call_back"].actor == by_action["resolved"].actor \
        == "operator:paris-op"
    assert by_action["resolved"].detail == {"outcome": "contact_came", "note": "daughter arrived, wearer fine"}
    acked = [e.detail for e in events if e.action == "command_acked"]
    assert [d.get("stage") for d in acked if d["type"] == "alert_ack"] == ["received", "operator", "closed"]
    assert any(d["type"] == "call" and d["ok"] for d in acked), acked


def check_the_audit_and_the_case(stack, case_id):
    with stack.services.sm() as s:
        audit = s.scalars(select(AuditEntry).where(AuditEntry.target == f"case:{case_id}")
                          .order_by(AuditEntry.id)).all()
        assert [(a.actor, a.action) for a in audit if a.action != "case.escalated"] == [
            ("operator:paris-op", "case.claimed"), ("operator:paris-op", "case.call_back"),
            ("operator:paris-op", "case.resolved")]
        assert [a.actor for a in audit if a.action == "case.escalated"] == ["system"]
        # The refused resolve changed nothing and every command reached its end state.
        final = s.get(AlertCase, case_id)
        assert final.outcome == "contact_came"
        # Each lifecycle step is stamped, in order.
        assert final.opened_at <= final.routed_at <= final.escalated_at <= final.claimed_at <= final.in_call_at \
            <= final.resolved_at
        assert {c.status for c in s.scalars(select(Command).where(Command.case_id == case_id))} == {"acked"}
