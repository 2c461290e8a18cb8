"""Everything a watch sends: validated, de-duplicated, stored, then acknowledged.

The order is the contract's: the alert is committed, and only then does the
watch get its ``alert_ack`` ``received`` (and only then does the MQTT adapter
PUBACK the broker). A redelivered alert changes nothing but is acked again,
because the watch may have missed the first ack.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from cloud import metrics, protocol
from cloud.domain import geofence, presence, vsim_pool
from cloud.domain.casefile import route_case
from cloud.domain.cells import CellDB
from cloud.domain.geo import country_of_mcc, distance_m, mcc_of_operator
from cloud.domain.ingest_ids import new_cid  # noqa: F401 (re-exported: cases.py imports it from here)
from cloud.domain.lifecycle import OPEN_STATUSES, PRIORITY  # noqa: F401 (re-exported)
from cloud.domain.ports import CommandSender, EventSink
from cloud.domain.uow import Tx, transaction
from cloud.domain.views import case_view
from cloud.store.models import Alert, AlertCase, CaseEvent, Command, Device, LocationPoint

log = logging.getLogger("pers.ingest")
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


class Ingestor:
    def __init__(self, sm: sessionmaker[Session], clock, sender: CommandSender, events: EventSink,
                 late_after_s: int = 300, *, cells: CellDB | None = None, present_window_s: int = 120):
        self.sm, self.clock, self.sender, self.events = sm, clock, sender, events
        self.late_after_s = late_after_s
        self.cells = cells
        self.present_window_s = present_window_s

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
                if kind != "presence":
                    presence.seen(tx, device, self.clock.now(), self.events)
                    # Take the write lock now (SQLite): the handler then reads the clock under it,
                    # so case events are stamped in the order of their ids, as the audit demands.
                    tx.session.flush()
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
            if case.loc_src == "cell":
                self._event(s, case, "system", "located_by_cell", {"lat": case.lat, "lon": case.lon,
                                                                   "acc": case.acc, "cell": alert.cell.model_dump()})
            # A fresh reading of the clock: the timeline must never go back in time.
            route_case(s, case, self.clock.now(), present_window_s=self.present_window_s,
                       country=country_of_mcc(alert.cell.mcc) if alert.cell else None)
            metrics.CASES_OPENED.labels(alert.kind).inc()

        s.add(Alert(case_id=case.id if case else None, device_id=device.id, mid=alert.mid, kind=alert.kind,
                    trigger=alert.trigger, device_ts=alert.ts, received_at=now,
                    payload=alert.model_dump(mode="json", exclude_none=True)))
        s.flush()  # the unique (device, mid) constraint speaks here, before any effect is queued
        metrics.ALERTS.labels(alert.kind).inc()
        self._ack_alert(tx, device.id, alert, case)
        self._side_effects(tx, device, alert.mid, alert.loc, alert.cell, alert.net)
        if case is not None:
            view = case_view(s, case, today=now.date())
            tx.after_commit(lambda: self.events.publish(case.tenant_id, {"type": "case", "case": view}))
        return Outcome(True, case_id=case.id if case else None)

    def _apply_alert_details(self, case: AlertCase, alert: protocol.Alert) -> None:
        cell_fix = self._cell_fix(alert.cell)
        loc = alert.loc
        if loc is not None and loc.src == "last" and cell_fix is not None:
            # A remembered fix the current cell cannot hear is stale: the wearer has moved.
            if distance_m((loc.lat, loc.lon), (cell_fix.lat, cell_fix.lon)) > cell_fix.range_m + (loc.acc or 0):
                loc = None
        if loc is not None:
            case.lat, case.lon, case.acc = loc.lat, loc.lon, loc.acc
            case.loc_src, case.loc_ts = loc.src, loc.ts
        elif cell_fix is not None and (case.lat is None or case.loc_src in ("cell", "last")):
            case.lat, case.lon, case.acc = cell_fix.lat, cell_fix.lon, cell_fix.range_m
            case.loc_src, case.loc_ts = "cell", alert.ts
        if alert.batt and alert.batt.pct is not None:
            case.batt_pct = alert.batt.pct
        if alert.vitals and alert.vitals.hr is not None:
            case.heart_rate = alert.vitals.hr
        if alert.net and alert.net.profile:
            case.net_profile = alert.net.profile

    def _cell_fix(self, cell: protocol.Cell | None):
        if self.cells is None or cell is None:
            return None
        return self.cells.lookup(cell.mcc, cell.mnc, cell.lac, cell.cid)

    def _side_effects(self, tx: Tx, device: Device, mid: str, loc, cell, net) -> None:
        """What any up message with a position or a network can trigger: the device's
        last cell, a new country's vSIM profiles, geofence crossings."""
        now = self.clock.now()
        if cell is not None:
            device.last_cell = cell.model_dump(exclude_none=True)
        mcc = cell.mcc if cell is not None else mcc_of_operator(net.op if net else None)
        vsim_pool.on_country_seen(tx, device, mcc, net.profile if net else None, now, self.sender, self.clock)
        if loc is not None and loc.src != "last":
            geofence.check(tx, device, loc.lat, loc.lon, loc.acc, now, mid, self.events,
                           present_window_s=self.present_window_s)

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
        loc = rep.loc
        if loc is None:
            fix = self._cell_fix(rep.cell)
            if fix is not None:
                loc = protocol.Location(lat=fix.lat, lon=fix.lon, acc=fix.range_m, src="cell", ts=rep.ts)
        self._side_effects(tx, device, rep.mid, loc, rep.cell, None)
        if loc is None:
            return Outcome(True)
        s.add(LocationPoint(device_id=device.id, mid=rep.mid, lat=loc.lat, lon=loc.lon, acc=loc.acc,
                            src=loc.src, device_ts=rep.ts, received_at=now, reason=rep.reason, ref=rep.ref))
        case = self._open_case(s, device.id)
        # A coarse cell fix never overwrites a GNSS position of the case.
        if case is not None and not (loc.src == "cell" and case.loc_src == "gnss"):
            case.lat, case.lon, case.acc, case.loc_src, case.loc_ts = (
                loc.lat, loc.lon, loc.acc, loc.src, loc.ts)
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
        self._side_effects(tx, device, st.mid, None, None, st.net)
        return Outcome(True)

    def _ack(self, tx: Tx, device: Device, ack: protocol.CommandAck) -> Outcome:
        s = tx.session
        cmd = s.get(Command, ack.cid)
        if cmd is None or cmd.device_id != device.id:
            raise protocol.Rejected("unknown_command", ack.cid)
        if cmd.status == "acked":
            return Outcome(True, duplicate=True)
        late = cmd.status == "expired"  # acked after its time to live: record it, it did happen
        cmd.status = "acked" if ack.ok else "failed"
        cmd.acked_at = self.clock.now()
        if cmd.case_id is not None:
            case = s.get(AlertCase, cmd.case_id)
            self._event(s, case, f"device:{device.id}", "command_acked",
                        {"cid": cmd.cid, "type": cmd.type, "ok": ack.ok, "err": ack.err,
                         "stage": cmd.payload.get("stage"), **({"late": True} if late else {})})
            s.flush()
            view = case_view(s, case, today=self.clock.now().date())
            tx.after_commit(lambda: self.events.publish(case.tenant_id, {"type": "case", "case": view}))
        return Outcome(True, case_id=cmd.case_id)

    def _presence(self, tx: Tx, device: Device, p: protocol.Presence) -> Outcome:
        # The retained "online" and the last will are not messages from the watch
        # itself in the same sense: online is proof of life, the will only a suspicion.
        if p.online:
            presence.seen(tx, device, self.clock.now(), self.events)
        else:
            presence.last_will(device, self.clock.now())
        return Outcome(True)

