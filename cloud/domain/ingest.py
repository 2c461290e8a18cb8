"""Everything a watch sends: validated, de-duplicated, stored, then acknowledged.

The order is the contract's: the alert is committed, and only then does the
watch get its ``alert_ack`` ``received`` (and only then does the MQTT adapter
PUBACK the broker). A redelivered alert changes nothing but is acked again,
because the watch may have missed the first ack.
"""
from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from cloud import metrics, protocol
from cloud.domain.ports import CommandSender, EventSink
from cloud.domain.uow import Tx, transaction
from cloud.domain.views import case_view
from cloud.store.models import Alert, AlertCase, CaseEvent, Command, Device, LocationPoint

log = logging.getLogger("pers.ingest")

PRIORITY = {"sos": 0, "fall": 0, "geofence": 1, "low_battery": 2, "offline": 3}
OPEN_STATUSES = ("new", "routed", "claimed", "in_call")
ACK_TEXT = {"sos": "Help is coming", "fall": "Help is coming", "low_battery": "Battery low noted",
            "cancel": "An operator will still check on you"}


@dataclass
class Outcome:
    accepted: bool
    kind: str | None = None
    device_id: str | None = None
    reason: str | None = None
    duplicate: bool = False
    case_id: int | None = None


def new_cid() -> str:
    return "c-" + secrets.token_hex(6)


class Ingestor:
    def __init__(self, sm: sessionmaker[Session], clock, sender: CommandSender, events: EventSink,
                 late_after_s: int = 300):
        self.sm, self.clock, self.sender, self.events = sm, clock, sender, events
        self.late_after_s = late_after_s

    # --- entry point for the MQTT adapter ----------------------------------------
    def handle(self, topic: str, payload: bytes) -> Outcome:
        """Never raises for bad input: every rejection is logged with its reason and counted."""
        try:
            device_id, kind, msg = protocol.parse_up(topic, payload)
        except protocol.Rejected as rej:
            return self._reject(rej.reason, topic, rej.detail)
        try:
            with metrics.INGEST_SECONDS.labels(kind).time():
                outcome = self._store(device_id, kind, msg)
        except protocol.Rejected as rej:
            return self._reject(rej.reason, topic, rej.detail)
        if outcome.duplicate:
            metrics.DUPLICATES.labels(kind).inc()
        else:
            metrics.INGESTED.labels(kind).inc()
        return outcome

    def _reject(self, reason: str, topic: str, detail: str) -> Outcome:
        metrics.REJECTED.labels(reason).inc()
        log.warning("rejected up message", extra={"reason": reason, "topic": topic[:200], "detail": detail})
        return Outcome(False, reason=reason)

    def _store(self, device_id: str, kind: str, msg) -> Outcome:
        handler = {"alert": self._alert, "loc": self._loc, "status": self._status,
                   "ack": self._ack, "presence": self._presence}[kind]
        try:
            with transaction(self.sm) as tx:
                device = tx.session.get(Device, device_id)
                if device is None:
                    raise protocol.Rejected("unknown_device", device_id)
                outcome = handler(tx, device, msg)
        except IntegrityError:
            # A concurrent worker stored the same (device, mid) first.
            return self._duplicate_after_race(device_id, kind, msg)
        outcome.kind, outcome.device_id = kind, device_id
        return outcome

    def _duplicate_after_race(self, device_id: str, kind: str, msg) -> Outcome:
        if kind == "alert":
            with transaction(self.sm) as tx:
                self._ack_alert(tx, device_id, msg)
        return Outcome(True, kind=kind, device_id=device_id, duplicate=True)

    # --- alerts ------------------------------------------------------------------
    def _alert(self, tx: Tx, device: Device, alert: protocol.Alert) -> Outcome:
        s, now = tx.session, self.clock.now()
        seen = s.scalar(select(Alert).where(Alert.device_id == device.id, Alert.mid == alert.mid))
        if seen is not None:
            self._ack_alert(tx, device.id, alert)
            return Outcome(True, duplicate=True, case_id=seen.case_id)

        late = alert.ts is not None and (self.clock.unix() - alert.ts) > self.late_after_s
        case = self._open_case(s, device.id)
        if alert.kind == "cancel":
            case = self._case_of_ref(s, device.id, alert.ref) or case
            if case is not None:
                case.wearer_cancelled = True
                self._event(s, case, f"device:{device.id}", "wearer_cancelled", {"mid": alert.mid, "ref": alert.ref})
        elif case is not None:
            case.press_count += 1
            if PRIORITY.get(alert.kind, 9) < case.priority:
                case.priority, case.kind = PRIORITY[alert.kind], alert.kind
            self._apply_alert_details(case, alert)
            case.late = case.late or late
            self._event(s, case, f"device:{device.id}", "alert_joined",
                        {"mid": alert.mid, "kind": alert.kind, "press_count": case.press_count})
        else:
            case = AlertCase(tenant_id=device.tenant_id, device_id=device.id, wearer_id=device.wearer_id,
                             kind=alert.kind, priority=PRIORITY.get(alert.kind, 9), status="new",
                             first_mid=alert.mid, press_count=1, late=late, opened_at=now)
            self._apply_alert_details(case, alert)
            s.add(case)
            s.flush()
            self._event(s, case, f"device:{device.id}", "opened", {"mid": alert.mid, "kind": alert.kind,
                                                                   "trigger": alert.trigger, "late": late})
            self._route(s, case)
            metrics.CASES_OPENED.labels(alert.kind).inc()

        s.add(Alert(case_id=case.id if case else None, device_id=device.id, mid=alert.mid, kind=alert.kind,
                    trigger=alert.trigger, device_ts=alert.ts, received_at=now,
                    payload=alert.model_dump(mode="json", exclude_none=True)))
        s.flush()  # the unique (device, mid) constraint speaks here, before any effect is queued
        metrics.ALERTS.labels(alert.kind).inc()
        self._ack_alert(tx, device.id, alert, case)
        if case is not None:
            view = case_view(s, case, today=now.date())
            tx.after_commit(lambda: self.events.publish(case.tenant_id, {"type": "case", "case": view}))
        return Outcome(True, case_id=case.id if case else None)

    def _apply_alert_details(self, case: AlertCase, alert: protocol.Alert) -> None:
        if alert.loc is not None:
            case.lat, case.lon, case.acc = alert.loc.lat, alert.loc.lon, alert.loc.acc
            case.loc_src, case.loc_ts = alert.loc.src, alert.loc.ts
        if alert.batt and alert.batt.pct is not None:
            case.batt_pct = alert.batt.pct
        if alert.vitals and alert.vitals.hr is not None:
            case.heart_rate = alert.vitals.hr
        if alert.net and alert.net.profile:
            case.net_profile = alert.net.profile

    def _route(self, s: Session, case: AlertCase) -> None:
        """Thin routing: the tenant's first contracted centre. (Geodesic routing: issue 5.)"""
        from cloud.store.models import Contract
        contract = s.scalar(select(Contract).where(Contract.tenant_id == case.tenant_id).order_by(Contract.rank))
        if contract is not None:
            case.centre_id, case.status = contract.centre_id, "routed"
            self._event(s, case, "system", "routed", {"centre_id": contract.centre_id})

    def _ack_alert(self, tx: Tx, device_id: str, alert: protocol.Alert, case: AlertCase | None = None) -> None:
        cmd = protocol.AlertAckCmd(cid=new_cid(), ts=self.clock.unix(), ref=alert.mid, stage="received",
                                   text=ACK_TEXT.get(alert.kind, "Received"))
        body = cmd.model_dump(mode="json", exclude_none=True)
        tx.session.add(Command(cid=cmd.cid, device_id=device_id, case_id=case.id if case else None,
                               type=cmd.type, payload=body, status="sent", created_at=self.clock.now()))
        tx.after_commit(lambda: self.sender.send_command(device_id, body))

    def _open_case(self, s: Session, device_id: str) -> AlertCase | None:
        return s.scalar(select(AlertCase).where(AlertCase.device_id == device_id,
                                                AlertCase.status.in_(OPEN_STATUSES))
                        .order_by(AlertCase.id.desc()))

    def _case_of_ref(self, s: Session, device_id: str, ref: str | None) -> AlertCase | None:
        if not ref:
            return None
        alert = s.scalar(select(Alert).where(Alert.device_id == device_id, Alert.mid == ref))
        return s.get(AlertCase, alert.case_id) if alert and alert.case_id else None

    def _event(self, s: Session, case: AlertCase, actor: str, action: str, detail: dict | None) -> None:
        s.add(CaseEvent(case_id=case.id, at=self.clock.now(), actor=actor, action=action, detail=detail))

    # --- location, status, acks, presence ---------------------------------------
    def _loc(self, tx: Tx, device: Device, rep: protocol.LocationReport) -> Outcome:
        s, now = tx.session, self.clock.now()
        if s.scalar(select(LocationPoint.id).where(LocationPoint.device_id == device.id,
                                                   LocationPoint.mid == rep.mid)) is not None:
            return Outcome(True, duplicate=True)
        if rep.loc is None:
            return Outcome(True)
        s.add(LocationPoint(device_id=device.id, mid=rep.mid, lat=rep.loc.lat, lon=rep.loc.lon, acc=rep.loc.acc,
                            src=rep.loc.src, device_ts=rep.ts, received_at=now, reason=rep.reason, ref=rep.ref))
        case = self._open_case(s, device.id)
        if case is not None:
            case.lat, case.lon, case.acc, case.loc_src, case.loc_ts = (
                rep.loc.lat, rep.loc.lon, rep.loc.acc, rep.loc.src, rep.loc.ts)
            s.flush()
            view = case_view(s, case, today=now.date())
            tx.after_commit(lambda: self.events.publish(case.tenant_id, {"type": "case", "case": view}))
        return Outcome(True, case_id=case.id if case else None)

    def _status(self, tx: Tx, device: Device, st: protocol.Status) -> Outcome:
        device.last_seen, device.online = self.clock.now(), True
        if st.fw:
            device.fw = st.fw
        if st.cfg is not None:
            device.cfg_version = st.cfg
        if st.batt and st.batt.pct is not None:
            device.batt_pct = st.batt.pct
        device.last_status = st.model_dump(mode="json", exclude_none=True)
        return Outcome(True)

    def _ack(self, tx: Tx, device: Device, ack: protocol.CommandAck) -> Outcome:
        s = tx.session
        cmd = s.get(Command, ack.cid)
        if cmd is None or cmd.device_id != device.id:
            raise protocol.Rejected("unknown_command", ack.cid)
        if cmd.status == "acked":
            return Outcome(True, duplicate=True)
        cmd.status = "acked" if ack.ok else "failed"
        cmd.acked_at = self.clock.now()
        if cmd.case_id is not None:
            case = s.get(AlertCase, cmd.case_id)
            self._event(s, case, f"device:{device.id}", "command_acked",
                        {"cid": cmd.cid, "type": cmd.type, "ok": ack.ok, "err": ack.err,
                         "stage": cmd.payload.get("stage")})
            s.flush()
            view = case_view(s, case, today=self.clock.now().date())
            tx.after_commit(lambda: self.events.publish(case.tenant_id, {"type": "case", "case": view}))
        return Outcome(True, case_id=cmd.case_id)

    def _presence(self, tx: Tx, device: Device, p: protocol.Presence) -> Outcome:
        device.online = p.online
        device.last_seen = self.clock.now() if p.online else device.last_seen
        return Outcome(True)

