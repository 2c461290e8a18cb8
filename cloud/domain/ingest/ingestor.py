"""The one door: every ingress adapter calls ``Ingestor.accept`` (one message) or
``Ingestor.handle_batch`` (many), and both take the same path, ``_ingest``:

1. parse and validate each message (validate.py); a rejection is answered at once;
2. alerts and command acks: each in its own transaction (alarm.py, reports.py);
3. ``loc``/``status``/``presence``: all of them in one transaction (reports.py).

Outgoing commands and live events leave only after their transaction commits
(outgoing.py)."""
from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from cloud import metrics, protocol
from cloud.domain import dedupe, presence
from cloud.domain.cells import CellDB
from cloud.domain.ingest import alarm, reports, validate
from cloud.domain.ingest.limits import DeviceLimits
from cloud.domain.ingest.outcome import Outcome, count, count_many
from cloud.domain.ingest.outgoing import ack_alert
from cloud.domain.ingest.validate import BATCH_KINDS, Parsed
from cloud.domain.ports import Clock, CommandSender, EventSink
from cloud.domain.quarantine import quarantine
from cloud.domain.uow import transaction
from cloud.store.errors import is_transient
from cloud.store.models import Device

if TYPE_CHECKING:
    from cloud.domain.notify import Notifier

log = logging.getLogger("pers.ingest")


class Ingestor:
    def __init__(self, sm: sessionmaker[Session], clock: Clock, sender: CommandSender, events: EventSink,
                 late_after_s: int = 300, *, cells: CellDB | None = None, present_window_s: int = 120,
                 press_budget: int = 10, press_window_s: int = 60, future_after_s: int = 300,
                 coalesced_publish_s: float = 10.0, dedupe_window_s: int = 7 * 86400,
                 max_alert_age_s: int = 30 * 86400, limits: DeviceLimits | None = None) -> None:
        self.sm, self.clock, self.sender, self.events = sm, clock, sender, events
        self.late_after_s = late_after_s
        self.cells = cells
        self.present_window_s = present_window_s
        # Stuck button: more than press_budget presses within press_window_s are coalesced.
        self.press_budget, self.press_window_s = press_budget, press_window_s
        self.press = alarm.PressBudget(press_budget, press_window_s)
        self.future_after_s = future_after_s
        # A retransmission is merged only within this long of the first copy (dedupe.py).
        self.dedupe_window_s = dedupe_window_s
        # An alarm stamped older than this is a wrong clock, not a late alarm.
        self.max_alert_age_s = max_alert_age_s
        self.coalesced_publish_s = coalesced_publish_s
        # Per-device limits on loc/status/presence/ack (limits.py); never on alerts.
        self.limits = limits
        # Set by the wiring: a geofence case notifies the family contact at once.
        self.notifier: Notifier | None = None

    @property
    def _presses(self) -> dict[str, deque[datetime]]:
        return self.press.presses

    def _over_press_budget(self, device_id: str, now: datetime) -> bool:
        return self.press.over_budget(device_id, now)

    # --- the one door: every ingress adapter calls accept() --------------------------
    def accept(self, topic: str, payload: bytes) -> Outcome:
        """Store one up message, or reject it, or quarantine it; then the adapter may
        acknowledge it. Raises only a transient store failure (``is_transient``): the
        adapter retries the message later and does not acknowledge it meanwhile.

        A deterministic failure (a constraint, a data error, a bug tripped by this
        message) never stalls the ingest: the raw message goes to the dead letters.
        An alarm that fails so is still given a case if at all possible: it is stored
        again with only what an alarm needs (kind, device, mid), flagged."""
        try:
            return self.handle(topic, payload)
        except Exception as exc:  # every failure is sorted here, none is lost
            if is_transient(exc):
                raise
            return self._quarantine(topic, payload, exc)

    def handle(self, topic: str, payload: bytes) -> Outcome:
        """One message, in its own transaction. Never raises for bad input: every
        rejection is logged with its reason and counted. An unreadable message on the
        alert topic of a known device is an alarm all the same (``_unreadable_alarm``)."""
        return self._ingest([(topic, payload)], batched=False)[0]

    def handle_batch(self, items: Sequence[tuple[str, bytes]]) -> list[Outcome]:
        """Many up messages, one outcome each (in order), as ``handle`` would give them.

        ``loc``/``status``/``presence`` are stored in one transaction; any other kind
        (alert, ack) is handled first, each in its own transaction, as ``handle`` does.
        Raises only what ``handle`` raises (the store being unavailable): the caller
        then retries the whole batch, nothing of it having been committed."""
        return self._ingest(items, batched=True)

    # --- the one path ------------------------------------------------------------------
    def _ingest(self, items: Sequence[tuple[str, bytes]], *, batched: bool) -> list[Outcome]:
        outcomes: list[Outcome | None] = [None] * len(items)
        group: list[Parsed] = []
        now = self.clock.now().timestamp() if self.limits is not None else 0.0
        for i, (topic, payload) in enumerate(items):
            try:
                device_id, kind, msg = protocol.parse_up(topic, payload)
            except protocol.Rejected as rej:
                if validate.is_unreadable_alarm(topic, rej):
                    outcomes[i] = self._unreadable_alarm(topic, payload, rej)
                else:
                    outcomes[i] = validate.reject(rej.reason, topic, rej.detail)
                continue
            if self._over_limit(device_id, kind, msg, now):
                outcomes[i] = Outcome(False, kind=kind, device_id=device_id, reason="rate_limited")
                continue
            if batched and kind in BATCH_KINDS:
                group.append(Parsed(i, topic, device_id, kind, msg))
            else:
                outcomes[i] = self._one(topic, device_id, kind, msg)  # an alert: in its own transaction
        if group:
            for i, out in self._many(group).items():
                outcomes[i] = out
        done = [out for out in outcomes if out is not None]
        assert len(done) == len(items)  # every message got its outcome above
        return done

    def _many(self, group: list[Parsed]) -> dict[int, Outcome]:
        """``loc``/``status``/``presence`` messages, in one transaction."""
        t0 = time.perf_counter()
        try:
            done = reports.store(self, group)
        except IntegrityError:
            # A concurrent worker stored one of these first (ON CONFLICT covers location
            # points; this is the belt and braces): fall back to one transaction each.
            log.warning("batch conflicted; storing its messages one by one", extra={"size": len(group)})
            return {p.i: self._one(p.topic, p.device_id, p.kind, p.msg) for p in group}
        metrics.BATCH_SECONDS.observe(time.perf_counter() - t0)
        count_many((p.kind, done[p.i]) for p in group)
        return done

    def _over_limit(self, device_id: str, kind: str, msg: object, now: float) -> bool:
        """Is this message over its device's limit (limits.py)? Never an alert; nor a
        last will (``online: false``): dropped, it would leave the console showing a
        watch online that has gone (it costs no write when nothing changes)."""
        if self.limits is None or kind == "alert":
            return False
        if isinstance(msg, protocol.Presence) and not msg.online:
            return False
        return not self.limits.allow(device_id, kind, now)

    def _one(self, topic: str, device_id: str, kind: str, msg: object) -> Outcome:
        """One parsed message in its own transaction, timed and counted."""
        try:
            with metrics.INGEST_SECONDS.labels(kind).time():
                outcome = self._store(topic, device_id, kind, msg)
        except protocol.Rejected as rej:
            return validate.reject(rej.reason, topic, rej.detail)
        return count(kind, outcome) if outcome.accepted else outcome

    def _store(self, topic: str, device_id: str, kind: str, msg: object) -> Outcome:
        try:
            if kind in BATCH_KINDS:
                return reports.store(self, [Parsed(0, topic, device_id, kind, msg)])[0]
            with transaction(self.sm) as tx:
                device = tx.session.get(Device, device_id)
                if device is None:
                    raise protocol.Rejected("unknown_device", device_id)
                presence.seen(tx, device, self.clock.now(), self.events)
                # Take the write lock now (SQLite): the handler then reads the clock under it,
                # so case events are stamped in the order of their ids, as the audit demands.
                tx.session.flush()
                # The kind names the model (protocol.UP_MODELS): "alert" an Alert, "ack" a CommandAck.
                if isinstance(msg, protocol.Alert):
                    outcome = alarm.store_alert(self, tx, device, msg)
                elif isinstance(msg, protocol.CommandAck):
                    outcome = reports.command_ack(self, tx, device, msg)
                else:
                    raise TypeError(f"no handler for a {kind!r} message")
        except IntegrityError:
            # A concurrent worker may have stored the same message first: then it is a
            # duplicate. Any other constraint is this message's own fault: re-raised,
            # for accept() to quarantine (never acked as if stored).
            if not self._stored_by_another(device_id, kind, msg):
                raise
            return self._duplicate_after_race(device_id, kind, msg)
        outcome.kind, outcome.device_id = kind, device_id
        return outcome

    def _stored_by_another(self, device_id: str, kind: str, msg: object) -> bool:
        with self.sm() as s:
            if isinstance(msg, protocol.Alert):  # kind "alert"
                since = self.clock.now() - timedelta(seconds=self.dedupe_window_s)
                return dedupe.is_retransmission(s, device_id, msg.mid, alarm.alert_doc(msg), since)
            if isinstance(msg, protocol.LocationReport):  # kind "loc"
                return dedupe.location_stored(s, device_id, msg.mid)
        return False

    def _duplicate_after_race(self, device_id: str, kind: str, msg: object) -> Outcome:
        if isinstance(msg, protocol.Alert):  # kind "alert"
            with transaction(self.sm) as tx:
                ack_alert(tx, self.sender, self.clock, device_id, msg)
        return Outcome(True, kind=kind, device_id=device_id, duplicate=True)

    # --- what cannot be stored as it came ------------------------------------------------
    def _unreadable_alarm(self, topic: str, payload: bytes, rej: protocol.Rejected) -> Outcome:
        """Bytes on a device's alert topic that are not a message at all: kept raw as a
        dead letter, and an SOS case opened so that a person looks (the device is
        authenticated: only it can write there)."""
        device_id, alarm_msg = validate.unreadable_alarm(topic, payload, rej)
        out = self._one(topic, device_id, "alert", alarm_msg)
        if out.accepted:
            quarantine(self.sm, self.clock.now(), topic, payload, rej.reason, rej.detail, case_id=out.case_id)
        return out

    def _quarantine(self, topic: str, payload: bytes, exc: Exception) -> Outcome:
        reason = {"IntegrityError": "constraint", "DataError": "data_error"}.get(type(exc).__name__,
                                                                                 "internal_error")
        log.exception("message could not be stored", extra={"topic": topic[:200], "reason": reason})
        case_id = self._degraded_alarm(topic, payload, exc) if topic.endswith("/alert") else None
        quarantine(self.sm, self.clock.now(), topic, payload, reason, f"{type(exc).__name__}: {exc}",
                   case_id=case_id)
        return Outcome(False, reason="quarantined", case_id=case_id)

    def _degraded_alarm(self, topic: str, payload: bytes, exc: Exception) -> int | None:
        """An alarm whose full form could not be stored, stored with nothing but its kind
        (its own mid first, so the watch gets its ack; then a mid of its bytes)."""
        for device_id, bare in validate.bare_alarms(topic, payload, exc):
            try:
                out = self._one(topic, device_id, "alert", bare)
            except Exception as again:  # the next, barer form may still store
                if is_transient(again):
                    raise
                log.exception("alarm could not be stored even bare", extra={"device_id": device_id, "mid": bare.mid})
                continue
            if out.accepted:
                return out.case_id
        return None
