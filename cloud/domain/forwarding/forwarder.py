"""Delivering the outbox to the receivers, after the commit, on a thread of its own
(a receiver that does not answer must never slow the ticker's timers).

Each due row is leased (a conditional UPDATE of its ``next_at``: of several cloud
processes, one sends it), framed with its own sequence number (kept for its
retransmissions) and the receiver's time (our clock plus what the last NAK
taught us), and sent. ``ACK`` of that sequence: done. ``NAK``: the receiver's
timestamp sets our offset for it and the message is sent again at once. ``DUH``:
the receiver will never take it; failed. No answer: tried again with a doubling
backoff; after ``tries`` on the primary the backup is tried, then the two in
turn, for ever at the capped pace: an alarm is never dropped. The first time
the primary's tries and the backup have all failed, the tenant's supervisors are
alerted (live event, audit entry) and the case's timeline says so.
Supervision: a receiver with ``poll_s`` gets a ``NULL`` message that often."""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from cloud import metrics
from cloud.domain.forwarding import dc09
from cloud.domain.forwarding.codes import code_for
from cloud.domain.forwarding.transport import exchange
from cloud.domain.outbound import OutboundHttp, OutboundRefused
from cloud.domain.ports import Clock, EventSink
from cloud.domain.uow import transaction
from cloud.store.models import AlarmReceiver, AuditEntry, CaseEvent, ForwardOutbox

if TYPE_CHECKING:
    from cloud.settings import Settings

log = logging.getLogger("pers.forward")


@dataclass(frozen=True)
class ForwardPolicy:
    timeout_s: float = 5.0
    tries: int = 3
    retry_base_s: float = 2.0
    retry_max_s: float = 60.0
    lease_s: float = 120.0  # a row being sent is not picked up again before this

    @classmethod
    def from_settings(cls, st: Settings) -> ForwardPolicy:
        return cls(st.forward_timeout_s, st.forward_tries, st.forward_retry_base_s, st.forward_retry_max_s,
                   lease_s=max(60.0, 4 * st.forward_timeout_s))

    def backoff(self, attempts: int) -> float:
        return float(min(self.retry_base_s * 2 ** max(0, attempts - 1), self.retry_max_s))


@dataclass(frozen=True)
class Endpoint:
    via: str  # primary | backup
    host: str
    port: int


@dataclass
class Result:
    ok: bool
    answer: str  # ACK, NAK, DUH, or what went wrong
    final: bool = False  # DUH: no point trying again


class Forwarder:
    def __init__(self, sm: sessionmaker[Session], clock: Clock, events: EventSink, http: OutboundHttp,
                 policy: ForwardPolicy | None = None) -> None:
        self.sm, self.clock, self.events, self.http = sm, clock, events, http
        self.policy = policy or ForwardPolicy()

    # --- the loop's one step ----------------------------------------------------------
    def run_once(self, max_rows: int = 500) -> int:
        """Deliver what is due, then the supervision polls; returns the rows tried.
        Per receiver, in order: only its oldest pending row is sent (an alarm's restore
        never overtakes the alarm), and a receiver that failed is left alone for the
        rest of the round (a silent one costs one timeout per round, not one per row,
        and never holds up the other receivers)."""
        tried, blocked = 0, set[int]()
        while tried < max_rows:
            head = self._next_head(blocked)
            if head is None:
                break
            row_id, receiver_id = head
            tried += 1
            try:
                acked = self.deliver(row_id)
            except Exception:
                log.exception("forwarding failed unexpectedly", extra={"outbox_id": row_id})
                acked = False
            if not acked:
                blocked.add(receiver_id)
        self.poll_receivers()
        return tried

    def _next_head(self, blocked: set[int]) -> tuple[int, int] | None:
        """The oldest due row that is also the oldest pending row of its receiver (one
        grouped read on the (status, receiver, id) index, then the due check)."""
        with self.sm() as s:
            heads = dict(s.execute(select(ForwardOutbox.receiver_id, func.min(ForwardOutbox.id))
                                   .where(ForwardOutbox.status == "pending")
                                   .group_by(ForwardOutbox.receiver_id)).all())
            candidates = [rid for rcv, rid in heads.items() if rcv not in blocked]
            if not candidates:
                return None
            row = s.execute(select(ForwardOutbox.id, ForwardOutbox.receiver_id)
                            .where(ForwardOutbox.id.in_(candidates), ForwardOutbox.next_at <= self.clock.now())
                            .order_by(ForwardOutbox.id).limit(1)).first()
        return (row[0], row[1]) if row is not None else None

    def deliver(self, row_id: int) -> bool:
        """One try of one row; True when the receiver acknowledged it."""
        with transaction(self.sm) as tx:
            s = tx.session
            now = self.clock.now()
            leased = s.execute(update(ForwardOutbox).where(ForwardOutbox.id == row_id,
                                                           ForwardOutbox.status == "pending",
                                                           ForwardOutbox.next_at <= now)
                               .values(next_at=now + timedelta(seconds=self.policy.lease_s)))
            if not leased.rowcount:  # type: ignore[attr-defined]
                return False  # another process has it
            row = s.get_one(ForwardOutbox, row_id)
            rcv = s.get(AlarmReceiver, row.receiver_id)
            if rcv is None:
                row.status, row.last_error, row.done_at = "failed", "receiver removed", now
                return False
            if row.seq is None:
                row.seq = self._next_seq(s, rcv)
            endpoint = self._endpoint(rcv, row.attempts)
            first = row.attempts == 0 or endpoint.via != row.via
            row.via = endpoint.via
            if first and row.case_id is not None:
                self._timeline(s, row, "forward_sent", rcv, now, {"via": endpoint.via, "seq": row.seq,
                                                                   "attempt": row.attempts + 1})
            data = dc09.event_data(rcv.fmt, rcv.account, row.qualifier, code_for(rcv.fmt, row.event, row.qualifier),
                                   row.zone)
            snapshot = _Snapshot.of(rcv)
            seq = row.seq
        result = self._send(snapshot, endpoint, seq, data)
        self._record(row_id, result, endpoint)
        return result.ok

    # --- sending --------------------------------------------------------------------
    def _send(self, rcv: _Snapshot, endpoint: Endpoint, seq: int, data: str, fmt: str | None = None) -> Result:
        """One exchange, and once more at once if the receiver NAKs with its time."""
        offset = rcv.clock_offset_s
        for _ in range(2):
            at = self.clock.now() + timedelta(seconds=offset)
            msg = dc09.message(fmt or rcv.fmt, rcv.link, seq, data, at)
            try:
                raw = exchange(self.http, rcv.protocol, endpoint.host, endpoint.port, msg, self.policy.timeout_s)
                answer = dc09.read_answer(raw, rcv.link.key)
            except OutboundRefused as exc:
                metrics.OUTBOUND_REFUSED.labels("call").inc()
                return Result(False, f"refused: {exc}")
            except (OSError, ValueError) as exc:
                return Result(False, f"{type(exc).__name__}: {exc}"[:300])
            if answer.kind == "ACK" and answer.seq == f"{seq:04d}":
                return Result(True, "ACK")
            if answer.kind == "ACK":
                return Result(False, f"ACK of sequence {answer.seq}, not {seq:04d}")
            if answer.kind == "DUH":
                return Result(False, "DUH: the receiver does not understand the message", final=True)
            if answer.kind == "NAK" and answer.at is not None:
                offset = (answer.at - self.clock.now()).total_seconds()
                self._learn_offset(rcv.id, offset)
                continue
            return Result(False, answer.kind)
        return Result(False, "NAK again after the time was corrected")

    def _learn_offset(self, receiver_id: int, offset: float) -> None:
        log.warning("receiver NAKed our time: resynchronised", extra={"receiver_id": receiver_id,
                                                                       "offset_s": round(offset, 1)})
        metrics.FORWARDED.labels("nak").inc()
        with transaction(self.sm) as tx:
            tx.session.execute(update(AlarmReceiver).where(AlarmReceiver.id == receiver_id)
                               .values(clock_offset_s=offset))

    def _record(self, row_id: int, result: Result, endpoint: Endpoint) -> None:
        with transaction(self.sm) as tx:
            s = tx.session
            now = self.clock.now()
            row = s.get_one(ForwardOutbox, row_id)
            rcv = s.get(AlarmReceiver, row.receiver_id)
            row.attempts += 1
            if result.ok:
                row.status, row.done_at, row.last_error, row.next_at = "acked", now, None, now
                metrics.FORWARDED.labels("acked").inc()
                if row.case_id is not None and rcv is not None:
                    self._timeline(s, row, "forward_acked", rcv, now, {"via": endpoint.via, "seq": row.seq,
                                                                        "attempts": row.attempts})
                return
            row.last_error = result.answer[:400]
            metrics.FORWARDED.labels("duh" if result.final else "retry").inc()
            if result.final:
                row.status, row.done_at = "failed", now
            else:
                row.next_at = now + timedelta(seconds=self.policy.backoff(row.attempts))
            given_up_round = row.attempts >= self.policy.tries + (1 if rcv is not None and rcv.backup_host else 0)
            if rcv is not None and row.alerted_at is None and (result.final or given_up_round):
                row.alerted_at = now
                self._alert(s, row, rcv, now, result.answer)
                # Supervisors are told after the commit: the event must not announce what a rollback undid.
                ev = {"type": "forward_failed", "case_id": row.case_id, "receiver": rcv.name, "event": row.event,
                      "reason": row.last_error, "retrying": row.status == "pending"}
                tenant = row.tenant_id
                tx.after_commit(lambda: self.events.publish(tenant, ev))

    def _alert(self, s: Session, row: ForwardOutbox, rcv: AlarmReceiver, now: datetime, reason: str) -> None:
        metrics.FORWARDED.labels("failed").inc()
        log.warning("forwarding to an alarm receiver failed", extra={"receiver_id": rcv.id, "outbox_id": row.id,
                                                                    "reason": reason})
        detail = {"receiver": rcv.name, "event": row.event, "reason": reason, "attempts": row.attempts,
                  "retrying": row.status == "pending"}
        s.add(AuditEntry(at=now, actor="system", action="forward.failed", tenant_id=row.tenant_id,
                         target=f"case:{row.case_id}" if row.case_id else f"receiver:{rcv.id}", detail=detail))
        if row.case_id is not None:
            self._timeline(s, row, "forward_failed", rcv, now, detail)

    @staticmethod
    def _timeline(s: Session, row: ForwardOutbox, action: str, rcv: AlarmReceiver, now: datetime,
                  detail: dict[str, Any]) -> None:
        s.add(CaseEvent(case_id=row.case_id, at=now, actor="system", action=action,
                        detail={"receiver": rcv.name, "event": row.event, "qualifier": row.qualifier, **detail}))

    def _endpoint(self, rcv: AlarmReceiver, attempts: int) -> Endpoint:
        """The primary for the first ``tries``; then the backup and the primary in turn."""
        primary = Endpoint("primary", rcv.host, rcv.port)
        if not rcv.backup_host or attempts < self.policy.tries:
            return primary
        backup = Endpoint("backup", rcv.backup_host, rcv.backup_port or rcv.port)
        return backup if (attempts - self.policy.tries) % 2 == 0 else primary

    @staticmethod
    def _next_seq(s: Session, rcv: AlarmReceiver) -> int:
        seq = rcv.next_seq if 0 < (rcv.next_seq or 0) <= 9999 else 1
        rcv.next_seq = seq % 9999 + 1
        return seq

    # --- supervision ----------------------------------------------------------------
    def poll_receivers(self) -> None:
        now = self.clock.now()
        with transaction(self.sm) as tx:
            s = tx.session
            due = []
            for rcv in s.scalars(select(AlarmReceiver).where(AlarmReceiver.enabled.is_(True),
                                                              AlarmReceiver.poll_s > 0)):
                if rcv.last_poll_at is None or (now - rcv.last_poll_at).total_seconds() >= rcv.poll_s:
                    rcv.last_poll_at = now
                    due.append((_Snapshot.of(rcv), self._next_seq(s, rcv), rcv.tenant_id))
        for snap, seq, tenant_id in due:
            result = self._send(snap, Endpoint("primary", snap.host, snap.port), seq, "", fmt="NULL")
            metrics.FORWARDED.labels("poll_ok" if result.ok else "poll_failed").inc()
            if not result.ok:
                log.warning("alarm receiver did not answer its supervision poll",
                            extra={"receiver_id": snap.id, "reason": result.answer})
                self.events.publish(tenant_id, {"type": "forward_failed", "case_id": None, "receiver": snap.name,
                                                "event": "poll", "reason": result.answer, "retrying": True})


@dataclass(frozen=True)
class _Snapshot:
    """What sending needs of a receiver, read inside the transaction, used after it."""
    id: int
    name: str
    protocol: str
    fmt: str
    host: str
    port: int
    clock_offset_s: float
    link: dc09.Link

    @classmethod
    def of(cls, r: AlarmReceiver) -> _Snapshot:
        key = dc09.aes_key(r.aes_key, r.key_encoding) if r.aes_key else None
        return cls(r.id, r.name, r.protocol, r.fmt, r.host, r.port, r.clock_offset_s or 0.0,
                   dc09.Link(account=r.account, line=r.line_no or "0", receiver=r.receiver_no, key=key))


class BackgroundForwarder:
    """Runs ``forwarder.run_once()`` every ``period_s`` until stopped; a failing round is
    logged and the next one runs anyway."""

    def __init__(self, forwarder: Forwarder, period_s: float = 0.5):
        self.forwarder, self.period_s = forwarder, period_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="forwarder", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            try:
                self.forwarder.run_once()
            except Exception:
                log.exception("forwarding round failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=15)
