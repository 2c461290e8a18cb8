"""The operator's side of a case: list, claim, resolve. Every action is audited."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from cloud import metrics, protocol
from cloud.domain.errors import Conflict, Forbidden, Invalid, NotFound
from cloud.domain.forwarding.codes import RESTORE
from cloud.domain.forwarding.outbox import enqueue_case
from cloud.domain.ingest import OPEN_STATUSES, new_cid
from cloud.domain.notify import NO_CHANNEL, Notifier, record_outcome
from cloud.domain.phones import national
from cloud.domain.ports import Clock, CommandSender, EventSink
from cloud.domain.uow import Tx, transaction
from cloud.domain.views import case_view
from cloud.store.models import AlertCase, AuditEntry, CallCentre, CaseEvent, Command, Contact, Operator, Wearer

OUTCOMES = ("false_alarm", "wearer_ok", "contact_came", "ambulance", "police", "no_answer_dispatched", "other")
DISPATCH_SERVICES = ("ambulance", "police", "fire", "doctor", "neighbour")


class CaseService:
    def __init__(self, sm: sessionmaker[Session], clock: Clock, sender: CommandSender, events: EventSink,
                 notifier: Notifier | None = None) -> None:
        self.sm, self.clock, self.sender, self.events = sm, clock, sender, events
        self.notifier = notifier  # when channels are configured

    def list_cases(self, op: Operator, *, open_only: bool = True, limit: int = 100,
                   offset: int = 0) -> list[dict[str, Any]]:
        with self.sm() as s:
            q = select(AlertCase).where(AlertCase.tenant_id == op.tenant_id)
            if open_only:
                q = q.where(AlertCase.status.in_(OPEN_STATUSES))
            q = q.order_by(AlertCase.priority, AlertCase.opened_at).limit(limit).offset(offset)
            today = self.clock.now().date()
            return [case_view(s, c, today=today) for c in s.scalars(q)]

    def get_case(self, op: Operator, case_id: int) -> dict[str, Any]:
        with self.sm() as s:
            case = self._own_case(s, op, case_id, lock=False)
            return case_view(s, case, today=self.clock.now().date(), timeline=True)

    def claim(self, op: Operator, case_id: int) -> dict[str, Any]:
        """Atomic on the server: of two operators racing, exactly one wins."""
        with transaction(self.sm) as tx:
            s = tx.session
            case = self._own_case(s, op, case_id, lock=False)
            res = s.execute(update(AlertCase)
                            .where(AlertCase.id == case.id, AlertCase.claimed_by.is_(None),
                                   AlertCase.status.in_(("new", "routed")))
                            .values(status="claimed", claimed_by=op.id))
            # Session.execute is typed to return Result, but an UPDATE runs to a CursorResult (rowcount).
            won: int = res.rowcount  # type: ignore[attr-defined]
            if not won:
                raise Conflict("case already claimed or closed")
            # The clock is read only once the row is ours: a concurrent writer's events
            # can then never be stamped later than ours yet stored before them.
            now = self.clock.now()
            s.refresh(case)
            case.claimed_at = now
            metrics.TIME_TO_CLAIM.observe((now - case.opened_at).total_seconds())
            self._record(tx, op, case, "claimed", {"time_to_claim_s": (now - case.opened_at).total_seconds()})
            self._ack_watch(tx, case, protocol.AlertAckCmd(cid=new_cid(), ts=self.clock.unix(), ref=case.first_mid,
                                                         stage="operator", text="An operator is with you"))
            return self._publish(tx, case)

    def resolve(self, op: Operator, case_id: int, outcome: str, note: str | None) -> dict[str, Any]:
        if outcome not in OUTCOMES:
            raise Invalid(f"outcome must be one of {', '.join(OUTCOMES)}")
        with transaction(self.sm) as tx:
            s = tx.session
            case = self._own_case(s, op, case_id)
            now = self.clock.now()
            if case.status == "resolved":
                raise Conflict("case already resolved")
            if case.claimed_by is not None and case.claimed_by != op.id and op.role == "operator":
                raise Forbidden("case is claimed by another operator")
            case.status, case.resolved_at, case.outcome = "resolved", now, outcome
            self._record(tx, op, case, "resolved", {"outcome": outcome, "note": note})
            enqueue_case(s, case, now, RESTORE)  # the receivers hear the alarm is over
            self._ack_watch(tx, case, protocol.AlertAckCmd(cid=new_cid(), ts=self.clock.unix(), ref=case.first_mid,
                                                         stage="closed", text="Alarm closed"))
            return self._publish(tx, case)

    # --- actions on a claimed case --------------------------------------------------
    def call_back(self, op: Operator, case_id: int, number: str | None = None) -> dict[str, Any]:
        """The watch dials the call centre (or the given number): the wearer answers
        hands-free without touching anything."""
        with transaction(self.sm) as tx:
            case = self._claimed_by(tx.session, op, case_id)
            if number is None:
                centre = tx.session.get(CallCentre, case.centre_id) if case.centre_id else None
                number = centre.phone if centre and centre.phone else None
            if not number:
                raise Invalid("no number to call: the case's call centre has no phone number")
            cmd = protocol.CallCmd(cid=new_cid(), ts=self.clock.unix(), number=number)
            if case.status != "in_call":  # a second call-back keeps the first call's stamp
                case.status, case.in_call_at = "in_call", self.clock.now()
            self._record(tx, op, case, "call_back", {"number": number, "cid": cmd.cid})
            self._command(tx, case, cmd)
            return self._publish(tx, case)

    def locate(self, op: Operator, case_id: int) -> dict[str, Any]:
        with transaction(self.sm) as tx:
            case = self._claimed_by(tx.session, op, case_id)
            cmd = protocol.LocateCmd(cid=new_cid(), ts=self.clock.unix())
            self._record(tx, op, case, "locate", {"cid": cmd.cid})
            self._command(tx, case, cmd)
            return self._publish(tx, case)

    def message(self, op: Operator, case_id: int, text: str, ack_required: bool = False) -> dict[str, Any]:
        with transaction(self.sm) as tx:
            case = self._claimed_by(tx.session, op, case_id)
            cmd = protocol.MessageCmd(cid=new_cid(), ts=self.clock.unix(), text=text, ack_required=ack_required)
            self._record(tx, op, case, "message", {"text": text, "cid": cmd.cid})
            self._command(tx, case, cmd)
            return self._publish(tx, case)

    def notify_next_contact(self, op: Operator, case_id: int) -> dict[str, Any]:
        """Walk the wearer's contact cascade: each call tries the next contact not yet
        tried, and the answer (and the timeline) says what the delivery result says:
        who was reached, on which channel, who was not and why. Nothing to send on
        (no channel applies) is a 409 that says so, recorded in the timeline too."""
        with transaction(self.sm) as tx:
            s = tx.session
            case = self._claimed_by(s, op, case_id)
            tried = {(e.detail or {}).get("contact_id") for e in s.scalars(
                select(CaseEvent).where(CaseEvent.case_id == case.id,
                                        CaseEvent.action.in_(("contact_notified", "contact_not_reached"))))}
            contacts = s.scalars(select(Contact).where(Contact.wearer_id == case.wearer_id)
                                 .order_by(Contact.rank, Contact.id)).all() if case.wearer_id else []
            if not contacts:
                raise Conflict("this wearer has no contacts: nobody to notify")
            nxt = next((c for c in contacts if c.id not in tried), None)
            if nxt is None:
                raise Conflict("every contact has already been tried: the timeline says who was reached")
            routes = self.notifier.routes_for(s, case, nxt) if self.notifier is not None else []
            if not routes:
                record_outcome(s, case, nxt, {}, f"operator:{op.username}", self.clock.now())
                self._publish(tx, case)
            message = f"OpenPERS alarm for {self._wearer_name(s, case)}: the call centre asks you to help."
            contact_id, name, phone = nxt.id, nxt.name, nxt.phone
        if not routes or self.notifier is None:  # recorded above; the operator is told at once
            raise Conflict(f"nothing was sent to {name}: {NO_CHANNEL}; call them on {national(phone)}")
        # Sent outside the case's transaction: a slow channel must not hold the case's row lock.
        self.notifier.notify_contact(None, case_id, contact_id, message, actor=f"operator:{op.username}",
                                     tenant_id=op.tenant_id)
        with transaction(self.sm) as tx:
            return self._publish(tx, self._own_case(tx.session, op, case_id, lock=False))

    def dispatch(self, op: Operator, case_id: int, service: str, reference: str | None) -> dict[str, Any]:
        if service not in DISPATCH_SERVICES:
            raise Invalid(f"service must be one of {', '.join(DISPATCH_SERVICES)}")
        with transaction(self.sm) as tx:
            case = self._claimed_by(tx.session, op, case_id)
            self._record(tx, op, case, "dispatched", {"service": service, "reference": reference})
            return self._publish(tx, case)

    def add_note(self, op: Operator, case_id: int, text: str) -> dict[str, Any]:
        with transaction(self.sm) as tx:
            case = self._own_case(tx.session, op, case_id)
            self._record(tx, op, case, "note", {"text": text})
            return self._publish(tx, case)

    # --- helpers -------------------------------------------------------------------
    def _claimed_by(self, s: Session, op: Operator, case_id: int) -> AlertCase:
        """Actions on the wearer need the case in hand: claimed by this operator
        (a supervisor or admin may act on any case of their tenant)."""
        case = self._own_case(s, op, case_id)
        if case.status == "resolved":
            raise Conflict("case is resolved")
        if case.claimed_by is None:
            raise Conflict("claim the case first")
        if case.claimed_by != op.id and op.role == "operator":
            raise Forbidden("case is claimed by another operator")
        return case

    def _wearer_name(self, s: Session, case: AlertCase) -> str:
        w = s.get(Wearer, case.wearer_id) if case.wearer_id else None
        return w.name if w else case.device_id

    def _own_case(self, s: Session, op: Operator, case_id: int, *, lock: bool = True) -> AlertCase:
        case = s.get(AlertCase, case_id)
        # Another tenant's case is reported as absent: its existence is not ours to know.
        if case is None or case.tenant_id != op.tenant_id:
            raise NotFound("no such case")
        if lock:
            # A no-op UPDATE takes the row lock (PostgreSQL) or the write lock (SQLite)
            # before anything reads the clock, so the timeline's stamps follow its ids.
            s.execute(update(AlertCase).where(AlertCase.id == case.id).values(id=AlertCase.id))
        return case

    def _record(self, tx: Tx, op: Operator, case: AlertCase, action: str, detail: dict[str, Any]) -> None:
        now = self.clock.now()
        tx.session.add(CaseEvent(case_id=case.id, at=now, actor=f"operator:{op.username}", action=action,
                                 detail=detail))
        tx.session.add(AuditEntry(at=now, actor=f"operator:{op.username}", action=f"case.{action}",
                                  tenant_id=op.tenant_id, target=f"case:{case.id}", detail=detail))

    def _ack_watch(self, tx: Tx, case: AlertCase, cmd: protocol.AlertAckCmd) -> None:
        """Only a wearer's own alarm is acknowledged on the watch: an offline or
        geofence case was not raised by the wearer, who must not read
        "An operator is with you" out of the blue."""
        if case.kind in ("sos", "fall", "low_battery") and not case.first_mid.startswith("sys:"):
            self._command(tx, case, cmd)

    def _command(self, tx: Tx, case: AlertCase, cmd: protocol.Command) -> None:
        body = cmd.model_dump(mode="json", exclude_none=True)
        tx.session.add(Command(cid=cmd.cid, device_id=case.device_id, case_id=case.id, type=cmd.type,
                               payload=body, status="sent", created_at=self.clock.now()))
        tx.after_commit(lambda: self.sender.send_command(case.device_id, body))

    def _publish(self, tx: Tx, case: AlertCase) -> dict[str, Any]:
        tx.session.flush()
        view = case_view(tx.session, case, today=self.clock.now().date(), timeline=True)
        tx.after_commit(lambda: self.events.publish(case.tenant_id, {"type": "case", "case": view}))
        return view
