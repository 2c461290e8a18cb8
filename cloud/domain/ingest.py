"""Everything a watch sends: validated, de-duplicated, stored, then acknowledged.

The order is the contract's: the alert is committed, and only then does the
watch get its ``alert_ack`` ``received`` (and only then does the MQTT adapter
PUBACK the broker). A redelivered alert changes nothing but is acked again,
because the watch may have missed the first ack.

Two paths (docs/scaling.md):
- ``handle``: one message, one transaction. Alerts and command acks always take it.
- ``handle_batch``: many ``loc``/``status``/``presence`` messages in ONE transaction
  (one commit, one fsync): devices, open cases and fenced wearers are read with one
  query each per batch; location rows are written with one multi-row
  ``INSERT .. ON CONFLICT DO NOTHING RETURNING`` (what it does not return was already
  stored: a duplicate); device rows are updated once per device. Bad input is still
  rejected one message at a time, with its reason and metric.

A stuck or bouncing SOS button: beyond ``press_budget`` presses in
``press_window_s`` while a case is open, presses are still stored (dedupe by mid
keeps working), counted in ``press_count`` and acked to the watch, but coalesced:
no case event, no live event, no command history on the case per press; one
``rate_limited`` case event when it starts, a metric and a log line.
"""
from __future__ import annotations

import contextlib
import functools
import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, func, select
from sqlalchemy import insert as sa_insert
from sqlalchemy import text as sa_text
from sqlalchemy import update as sa_update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from cloud import metrics, protocol
from cloud.domain import geofence, presence, vsim_pool
from cloud.domain.dedupe import classify, digest_of
from cloud.domain.quarantine import quarantine
from cloud.domain.casefile import route_case
from cloud.domain.cells import CellDB
from cloud.domain.geo import country_of_mcc, distance_m, mcc_of_operator
from cloud.domain.ingest_ids import new_cid  # noqa: F401 (re-exported: cases.py imports it from here)
from cloud.domain.lifecycle import OPEN_STATUSES, PRIORITY  # noqa: F401 (re-exported)
from cloud.domain.ports import CommandSender, EventSink
from cloud.domain.uow import Tx, transaction
from cloud.domain.views import case_view
from cloud.store.errors import is_transient
from cloud.store.models import Alert, AlertCase, CaseEvent, Command, Device, Geofence, LocationPoint

log = logging.getLogger("pers.ingest")
BATCH_KINDS = frozenset({"loc", "status", "presence"})
_LOC_COLUMNS = {"device_id": "varchar", "mid": "varchar", "lat": "float8", "lon": "float8", "acc": "float8",
                "src": "varchar", "device_ts": "int8", "received_at": "timestamp", "reason": "varchar",
                "ref": "varchar"}
_PG_LOC_INSERT = sa_text(
    f"INSERT INTO location_points ({', '.join(_LOC_COLUMNS)}) "
    f"SELECT * FROM unnest({', '.join(f'CAST(:{c} AS {t}[])' for c, t in _LOC_COLUMNS.items())}) "
    "ON CONFLICT (device_id, mid) DO NOTHING RETURNING device_id, mid")
_SQLITE_LOC_ROW = f"({', '.join('?' * len(_LOC_COLUMNS))})"


@functools.lru_cache(maxsize=8)
def _sqlite_loc_insert(n: int) -> str:
    return (f"INSERT INTO location_points ({', '.join(_LOC_COLUMNS)}) VALUES "
            f"{', '.join([_SQLITE_LOC_ROW] * n)} ON CONFLICT (device_id, mid) DO NOTHING RETURNING device_id, mid")


def _sqlite_insert_locations(s: Session, rows: list[dict]) -> set[tuple[str, str]]:
    """The same multi-row INSERT .. ON CONFLICT DO NOTHING RETURNING as SQLAlchemy's
    sqlite dialect builds, as SQL text with flat positional parameters: binding
    5,000 parameters one by one through the compiled statement cost about as much
    CPU as SQLite's own work on the insert. Every row of a batch has the same
    received_at, so the column's bind processor (SQLAlchemy's text form of a
    datetime, which the ORM reads back) runs once per batch, not once per row."""
    conn = s.connection()
    to_db = LocationPoint.__table__.c.received_at.type.bind_processor(conn.dialect)
    # The driver's cursor, in the session's transaction: plain tuples back, not Rows.
    stamps: dict = {}
    inserted: set[tuple[str, str]] = set()
    with contextlib.closing(conn.connection.dbapi_connection.cursor()) as cursor:
        for k in range(0, len(rows), 500):  # 5,000 parameters: well under SQLite's 32,766
            chunk = rows[k:k + 500]
            flat: list = []
            for r in chunk:
                at = r["received_at"]
                stamp = stamps.get(at)
                if stamp is None:
                    stamp = stamps[at] = to_db(at) if to_db else at
                flat += (r["device_id"], r["mid"], r["lat"], r["lon"], r["acc"], r["src"], r["device_ts"], stamp,
                         r["reason"], r["ref"])
            inserted.update(cursor.execute(_sqlite_loc_insert(len(chunk)), flat).fetchall())
    return inserted


ACK_TEXT = {"sos": "Help is coming", "fall": "Help is coming", "low_battery": "Battery low noted",
            "cancel": "An operator will still check on you"}


class _DeviceRow:
    """What the batch's fast path needs of a device (see Ingestor._store_batch)."""
    __slots__ = ("id", "tenant_id", "wearer_id", "country", "last_cell", "cell_at_load")

    def __init__(self, id, tenant_id, wearer_id, country, last_cell):  # noqa: A002 (the column's name)
        self.id, self.tenant_id, self.wearer_id, self.country = id, tenant_id, wearer_id, country
        self.last_cell = self.cell_at_load = last_cell


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
                 late_after_s: int = 300, *, cells: CellDB | None = None, present_window_s: int = 120,
                 press_budget: int = 10, press_window_s: int = 60, future_after_s: int = 300,
                 coalesced_publish_s: float = 10.0, dedupe_window_s: int = 7 * 86400,
                 max_alert_age_s: int = 30 * 86400):
        self.sm, self.clock, self.sender, self.events = sm, clock, sender, events
        self.late_after_s = late_after_s
        self.cells = cells
        self.present_window_s = present_window_s
        # Stuck button: more than press_budget presses within press_window_s are coalesced.
        self.press_budget, self.press_window_s = press_budget, press_window_s
        self.future_after_s = future_after_s
        # A retransmission is merged only within this long of the first copy (dedupe.py).
        self.dedupe_window_s = dedupe_window_s
        # An alarm stamped older than this is a wrong clock, not a late alarm.
        self.max_alert_age_s = max_alert_age_s
        self.coalesced_publish_s = coalesced_publish_s
        self._presses: dict[str, deque[datetime]] = {}
        self._limited_case: dict[str, int] = {}         # device -> case that got its rate_limited event
        self._published_at: dict[int, datetime] = {}    # case -> last live event while rate limited
        self._press_lock = threading.Lock()
        self._press_sweep_at = 1024

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
        except Exception as exc:  # noqa: BLE001 (every failure is sorted here, none is lost)
            if is_transient(exc):
                raise
            return self._quarantine(topic, payload, exc)

    def handle(self, topic: str, payload: bytes) -> Outcome:
        """Never raises for bad input: every rejection is logged with its reason and counted.
        An unreadable message on the alert topic of a known device is an alarm all the
        same (``_unreadable_alarm``)."""
        try:
            device_id, kind, msg = protocol.parse_up(topic, payload)
        except protocol.Rejected as rej:
            if rej.reason in protocol.ALARM_UNREADABLE and topic.endswith("/alert"):
                return self._unreadable_alarm(topic, payload, rej)
            return self._reject(rej.reason, topic, rej.detail)
        return self._handle_parsed(topic, device_id, kind, msg)

    def _unreadable_alarm(self, topic: str, payload: bytes, rej: protocol.Rejected) -> Outcome:
        """Bytes on a device's alert topic that are not a message at all: kept raw as a
        dead letter, and an SOS case opened so that a person looks (the device is
        authenticated: only it can write there). Its mid is derived from the bytes, so
        the watch's re-sends join that case; no ack is sent, the watch knows no such mid."""
        device_id, _ = protocol.split_topic(topic)
        alarm = protocol.Alert(v=1, mid=protocol.synthetic_mid(payload), kind="sos")
        alarm._flags = ({"field": "message", "problem": f"unreadable ({rej.reason}): kept as a dead letter"},
                        {"field": "mid", "problem": "none readable: derived from the message's bytes"})
        out = self._handle_parsed(topic, device_id, "alert", alarm)
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
        try:
            device_id, _, msg = protocol.parse_up(topic, payload)
        except Exception:  # noqa: BLE001 (Rejected, or whatever made the first try fail)
            return None
        if msg.kind in protocol.NON_ALARM_ALERT_KINDS:
            return None
        problem = {"field": "message", "problem": f"could not be stored ({type(exc).__name__}): "
                                                  "details dropped, kept as a dead letter"}
        made_up = {"field": "mid", "problem": "derived from the message's bytes: its own would not store"}
        for mid, extra in ((msg.mid, ()), (protocol.synthetic_mid(payload), (made_up,))):
            bare = protocol.Alert(v=1, mid=mid, kind=msg.kind, trigger=msg.trigger)
            bare._flags = (*msg.flags, problem, *extra)
            try:
                out = self._handle_parsed(topic, device_id, "alert", bare)
            except Exception as again:  # noqa: BLE001
                if is_transient(again):
                    raise
                log.exception("alarm could not be stored even bare", extra={"device_id": device_id, "mid": mid})
                continue
            if out.accepted:
                return out.case_id
        return None

    def _handle_parsed(self, topic: str, device_id: str, kind: str, msg) -> Outcome:
        try:
            with metrics.INGEST_SECONDS.labels(kind).time():
                outcome = self._store(device_id, kind, msg)
        except protocol.Rejected as rej:
            return self._reject(rej.reason, topic, rej.detail)
        return self._count(kind, outcome)

    @staticmethod
    def _count(kind: str, outcome: Outcome) -> Outcome:
        if outcome.duplicate:
            metrics.DUPLICATES.labels(kind).inc()
        else:
            metrics.INGESTED.labels(kind).inc()
        return outcome

    # --- the batch path: loc, status, presence ------------------------------------
    def handle_batch(self, items: Sequence[tuple[str, bytes]]) -> list[Outcome]:
        """Many up messages, one outcome each (in order), as ``handle`` would give them.

        ``loc``/``status``/``presence`` are stored in one transaction; any other kind
        (alert, ack) is handled first, each in its own transaction, as ``handle`` does.
        Raises only what ``handle`` raises (the store being unavailable): the caller
        then retries the whole batch, nothing of it having been committed."""
        outcomes: list[Outcome | None] = [None] * len(items)
        bulk: list[tuple[int, str, str, str, object]] = []
        for i, (topic, payload) in enumerate(items):
            if topic.rsplit("/", 1)[-1] not in BATCH_KINDS:
                outcomes[i] = self.handle(topic, payload)  # an alert, even unreadable, is an alarm
                continue
            try:
                device_id, kind, msg = protocol.parse_up(topic, payload)
            except protocol.Rejected as rej:
                outcomes[i] = self._reject(rej.reason, topic, rej.detail)
                continue
            if kind in BATCH_KINDS:
                bulk.append((i, topic, device_id, kind, msg))
            else:
                outcomes[i] = self._handle_parsed(topic, device_id, kind, msg)
        if bulk:
            t0 = time.perf_counter()
            try:
                done = self._store_batch(bulk)
            except IntegrityError:
                # A concurrent worker stored one of these first (ON CONFLICT covers location
                # points; this is the belt and braces): fall back to one transaction each.
                log.warning("batch conflicted; storing its messages one by one", extra={"size": len(bulk)})
                done = {i: self._handle_parsed(topic, device_id, kind, msg)
                        for i, topic, device_id, kind, msg in bulk}
            else:
                metrics.BATCH_SECONDS.observe(time.perf_counter() - t0)
                counts: dict[tuple[str, bool], int] = {}
                for (i, _t, _d, kind, _m) in bulk:
                    out = done[i]
                    if out.accepted:
                        counts[kind, out.duplicate] = counts.get((kind, out.duplicate), 0) + 1
                for (kind, dup), n in counts.items():
                    (metrics.DUPLICATES if dup else metrics.INGESTED).labels(kind).inc(n)
            for i, out in done.items():
                outcomes[i] = out
        return outcomes  # type: ignore[return-value]

    def _store_batch(self, bulk) -> dict[int, Outcome]:
        out: dict[int, Outcome] = {}
        with transaction(self.sm) as tx:
            s = tx.session
            ids = {b[2] for b in bulk}
            # Device rows as plain tuples first: an ORM object per device is the dearest
            # part of a batch of location reports from many devices.
            known = {r.id: r for r in s.execute(
                select(Device.id, Device.tenant_id, Device.wearer_id, Device.presence, Device.country,
                       Device.last_cell).where(Device.id.in_(ids)))}
            locs = [b for b in bulk if b[3] == "loc" and b[2] in known]
            open_cases: dict[str, AlertCase] = {}
            fenced: set[int] = set()
            now = self.clock.now()
            # Location rows first, in one multi-row INSERT .. ON CONFLICT DO NOTHING RETURNING:
            # what it does not return was already stored (a redelivery), and is then a
            # duplicate that changes nothing, as in _loc.
            fixes: dict[int, protocol.Location | None] = {}
            dup_keys: set[tuple[str, str]] = set()
            if locs:
                rows, keys = [], set()
                for i, _t, device_id, _k, rep in locs:
                    key = (device_id, rep.mid)
                    if key in keys:
                        continue  # the same report twice in one batch: the second is a duplicate
                    keys.add(key)
                    loc = fixes[i] = self._position_of(rep)
                    if loc is not None:
                        rows.append({"device_id": device_id, "mid": rep.mid, "lat": loc.lat, "lon": loc.lon,
                                     "acc": loc.acc, "src": loc.src, "device_ts": rep.ts, "received_at": now,
                                     "reason": rep.reason, "ref": rep.ref})
                if rows:
                    dup_keys = {(r["device_id"], r["mid"]) for r in rows} - self._insert_locations(s, rows)
                loc_devices = {b[2] for b in locs}
                for case in s.scalars(select(AlertCase).where(AlertCase.device_id.in_(loc_devices),
                                                              AlertCase.status.in_(OPEN_STATUSES))
                                      .order_by(AlertCase.id)):
                    open_cases[case.device_id] = case  # the newest open case, as _open_case picks
                wearers = {known[d].wearer_id for d in loc_devices if known[d].wearer_id is not None}
                if wearers:
                    fenced = set(s.scalars(select(Geofence.wearer_id).where(Geofence.wearer_id.in_(wearers),
                                                                            Geofence.active.is_(True))))
            # The fast path: a location report from a device that is online, has no geofence
            # and stays in its country only moves last_seen (and maybe last_cell). Anything
            # else (status, presence, coming back online, a new country, geofences) goes
            # through the ORM and the same domain functions as handle().
            slow: set[str] = set()
            for _i, _t, device_id, kind, msg in bulk:
                r = known.get(device_id)
                if r is None or device_id in slow:
                    continue
                if kind != "loc" or r.presence != "online" or r.wearer_id in fenced:
                    slow.add(device_id)
                    continue
                country = country_of_mcc(msg.cell.mcc) if msg.cell is not None else None
                if country is not None and country != r.country:
                    slow.add(device_id)
            devices: dict[str, Device | _DeviceRow] = {
                d: _DeviceRow(r.id, r.tenant_id, r.wearer_id, r.country, r.last_cell)
                for d, r in known.items() if d not in slow}
            if slow:
                devices.update({d.id: d for d in s.scalars(select(Device).where(Device.id.in_(slow)))})
            touched: dict[int, AlertCase] = {}
            locked = False
            # One reading of the clock for the batch (it is one commit), taken again once
            # the write lock is ours (SQLite), as _store does: case events are then
            # stamped in the order of their ids.
            for i, topic, device_id, kind, msg in bulk:
                device = devices.get(device_id)
                if device is None:
                    out[i] = self._reject("unknown_device", topic, device_id)
                    continue
                if isinstance(device, Device):
                    if kind != "presence":
                        presence.seen(tx, device, now, self.events)
                    if not locked:
                        s.flush()
                        locked = True
                        now = self.clock.now()
                if kind == "loc":
                    if i not in fixes or (device_id, msg.mid) in dup_keys:
                        out[i] = Outcome(True, duplicate=True)
                    else:
                        out[i] = self._loc_in_batch(tx, device, msg, fixes[i], now, open_cases, fenced, touched)
                elif kind == "status":
                    out[i] = self._status(tx, device, msg, now)
                else:
                    out[i] = self._presence(tx, device, msg, now)
                out[i].kind, out[i].device_id = kind, device_id
            lite = [d for d in devices.values() if isinstance(d, _DeviceRow)]
            if lite:
                table = Device.__table__
                seen_ids = [d.id for d in lite]
                for k in range(0, len(seen_ids), 500):  # well under any bound-parameter limit
                    s.execute(sa_update(table).where(table.c.id.in_(seen_ids[k:k + 500]))
                              .values(last_seen=now, online=True))
                moved = [{"b_id": d.id, "b_cell": d.last_cell} for d in lite if d.last_cell is not d.cell_at_load]
                if moved:
                    s.execute(sa_update(table).where(table.c.id == bindparam("b_id"))
                              .values(last_cell=bindparam("b_cell")), moved)
            if touched:
                s.flush()
                today = self.clock.now().date()
                for case in touched.values():
                    view = case_view(s, case, today=today)
                    tenant_id = case.tenant_id
                    tx.after_commit(lambda t=tenant_id, v=view: self.events.publish(t, {"type": "case", "case": v}))
        return out

    def _position_of(self, rep: protocol.LocationReport) -> protocol.Location | None:
        loc = rep.loc
        if loc is None:
            fix = self._cell_fix(rep.cell)
            if fix is not None:
                loc = protocol.Location(lat=fix.lat, lon=fix.lon, acc=fix.range_m, src="cell", ts=rep.ts)
        return loc

    def _loc_in_batch(self, tx: Tx, device, rep: protocol.LocationReport, loc: protocol.Location | None,
                      now: datetime, open_cases: dict, fenced: set, touched: dict) -> Outcome:
        """_loc for a report whose row (if it has a position) the batch has just inserted."""
        crossings = self._side_effects(tx, device, rep.mid, loc, rep.cell, None,
                                       geofenced=device.wearer_id in fenced, now=now)
        for info in crossings:
            if info.get("case_id") is not None:  # a geofence case opened or joined just now
                open_cases[device.id] = tx.session.get(AlertCase, info["case_id"])
        if loc is None:
            return Outcome(True)
        case = open_cases.get(device.id)
        if case is not None and not (loc.src == "cell" and case.loc_src == "gnss"):
            case.lat, case.lon, case.acc, case.loc_src, case.loc_ts = loc.lat, loc.lon, loc.acc, loc.src, loc.ts
            touched[case.id] = case
        return Outcome(True, case_id=case.id if case else None)

    @staticmethod
    def _insert_locations(s: Session, rows: list[dict]) -> set[tuple[str, str]]:
        """Insert, skipping (device, mid) pairs already stored; returns the pairs inserted."""
        table = LocationPoint.__table__
        dialect = s.get_bind().dialect.name
        if dialect == "postgresql":
            # One statement with one array per column: a multi-row VALUES of 500 x 10
            # placeholders costs more to build and parse (psycopg) than to execute.
            params = {c: [r[c] for r in rows] for c in _LOC_COLUMNS}
            return {tuple(r) for r in s.execute(_PG_LOC_INSERT, params)}
        if dialect == "sqlite":
            return _sqlite_insert_locations(s, rows)
        # Any other store: read what is there, insert the rest.
        stored = {tuple(r) for r in s.execute(
            select(table.c.device_id, table.c.mid).where(table.c.device_id.in_({r["device_id"] for r in rows}),
                                                         table.c.mid.in_({r["mid"] for r in rows})))}
        fresh = [r for r in rows if (r["device_id"], r["mid"]) not in stored]
        if fresh:
            s.execute(sa_insert(table), fresh)
        return {(r["device_id"], r["mid"]) for r in fresh}

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
            # A concurrent worker may have stored the same message first: then it is a
            # duplicate. Any other constraint is this message's own fault: re-raised,
            # for accept() to quarantine (never acked as if stored).
            if not self._stored_by_another(device_id, kind, msg):
                raise
            return self._duplicate_after_race(device_id, kind, msg)
        outcome.kind, outcome.device_id = kind, device_id
        return outcome

    def _stored_by_another(self, device_id: str, kind: str, msg) -> bool:
        with self.sm() as s:
            if kind == "alert":
                since = self.clock.now() - timedelta(seconds=self.dedupe_window_s)
                return classify(s, device_id, msg.mid, digest_of(self._alert_doc(msg)), since)[0] is not None
            if kind == "loc":
                return s.scalar(select(LocationPoint.id).where(LocationPoint.device_id == device_id,
                                                               LocationPoint.mid == msg.mid)) is not None
        return False

    def _duplicate_after_race(self, device_id: str, kind: str, msg) -> Outcome:
        if kind == "alert":
            with transaction(self.sm) as tx:
                self._ack_alert(tx, device_id, msg)
        return Outcome(True, kind=kind, device_id=device_id, duplicate=True)

    @staticmethod
    def _alert_doc(alert: protocol.Alert) -> dict:
        return alert.model_dump(mode="json", exclude_none=True)

    # --- alerts ------------------------------------------------------------------
    def _alert(self, tx: Tx, device: Device, alert: protocol.Alert) -> Outcome:
        s, now = tx.session, self.clock.now()
        doc = self._alert_doc(alert)
        digest = digest_of(doc)
        seen, key, reused = classify(s, device.id, alert.mid, digest,
                                     now - timedelta(seconds=self.dedupe_window_s))
        if seen is not None:
            return self._retransmission(tx, device, alert, seen)

        flags = alert.flags
        for flag in flags:
            metrics.ALARMS_SALVAGED.labels(flag["field"].split(".")[0]).inc()
        if flags:
            log.warning("alarm with bad fields: dropped and flagged",
                        extra={"device_id": device.id, "mid": alert.mid, "flags": flags})
        # The device's time is believed only within [now - max_alert_age_s, now +
        # future_after_s]: outside it the clock is wrong (a bad network time, a reset
        # RTC) and the receive time stands. Still an alarm, flagged.
        skew_s = alert.ts - self.clock.unix() if alert.ts is not None else 0
        skewed = skew_s > self.future_after_s
        stale = alert.ts is not None and -skew_s > self.max_alert_age_s
        late = alert.ts is not None and not stale and -skew_s > self.late_after_s
        if skewed or stale:
            metrics.CLOCK_SKEW.labels(alert.kind).inc()
            log.warning("alert stamped far from now: device clock wrong",
                        extra={"device_id": device.id, "mid": alert.mid, "skew_s": skew_s})
            flags = [*flags, {"field": "ts", "problem": f"watch clock wrong by {abs(skew_s)} s: "
                                                        "the time of receipt is used", "got": str(alert.ts)}]
        if reused:
            # The watch forgot it used this id (wiped, reflashed, reset): a new alarm.
            flags = [*flags, {"field": "mid", "problem": "message id used before (another message, or "
                                                         "beyond the retry window): the watch was probably reset",
                              "got": alert.mid}]
        over_budget = alert.kind != "cancel" and self._over_press_budget(device.id, now)
        case = self._open_case(s, device.id)
        if case is not None and over_budget:
            return self._coalesced_press(tx, device, alert, case, late, now, key, flags)
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
                        {"mid": alert.mid, "kind": alert.kind, "press_count": case.press_count,
                         **({"clock_skew_s": skew_s} if skewed else {})})
            self._flag(s, case, alert.mid, flags)
        else:
            case = AlertCase(tenant_id=device.tenant_id, device_id=device.id, wearer_id=device.wearer_id,
                             kind=alert.kind, priority=PRIORITY.get(alert.kind, 9), status="new",
                             first_mid=alert.mid, press_count=1, late=late, opened_at=now)
            self._apply_alert_details(case, alert)
            s.add(case)
            s.flush()
            self._event(s, case, f"device:{device.id}", "opened", {"mid": alert.mid, "kind": alert.kind,
                                                                   "trigger": alert.trigger, "late": late,
                                                                   **({"clock_skew_s": skew_s} if skewed else {})})
            if skewed:
                self._event(s, case, "system", "clock_skew", {"mid": alert.mid, "device_ts": alert.ts,
                                                              "server_ts": self.clock.unix(), "skew_s": skew_s})
            self._flag(s, case, alert.mid, flags)
            if case.loc_src == "cell":
                # The watch may send a cell position without the cell it came from.
                self._event(s, case, "system", "located_by_cell",
                            {"lat": case.lat, "lon": case.lon, "acc": case.acc,
                             "cell": alert.cell.model_dump() if alert.cell is not None else None})
            # A fresh reading of the clock: the timeline must never go back in time.
            route_case(s, case, self.clock.now(), present_window_s=self.present_window_s,
                       country=country_of_mcc(alert.cell.mcc) if alert.cell else None)
            metrics.CASES_OPENED.labels(alert.kind).inc()

        s.add(Alert(case_id=case.id if case else None, device_id=device.id, mid=alert.mid, digest=key,
                    kind=alert.kind, trigger=alert.trigger, device_ts=alert.ts, received_at=now, payload=doc))
        s.flush()  # the unique (device, mid, digest) constraint speaks here, before any effect is queued
        metrics.ALERTS.labels(alert.kind).inc()
        self._ack_alert(tx, device.id, alert, case)
        self._side_effects(tx, device, alert.mid, alert.loc, alert.cell, alert.net)
        if case is not None:
            view = case_view(s, case, today=now.date())
            tx.after_commit(lambda: self.events.publish(case.tenant_id, {"type": "case", "case": view}))
        return Outcome(True, case_id=case.id if case else None)

    def _over_press_budget(self, device_id: str, now: datetime) -> bool:
        """Is this press one more than ``press_budget`` within ``press_window_s``?
        In memory, per process: a restart or a second worker only lets a few more
        presses through as ordinary joins."""
        window_start = now - timedelta(seconds=self.press_window_s)
        with self._press_lock:
            q = self._presses.get(device_id)
            if q is None:
                if len(self._presses) >= self._press_sweep_at:
                    self._sweep_presses(window_start)
                q = self._presses[device_id] = deque(maxlen=self.press_budget + 1)
            q.append(now)
            return len(q) > self.press_budget and q[0] > window_start

    def _sweep_presses(self, window_start: datetime) -> None:
        """Forget devices with no press in the window (alerts are rare: most of a large
        fleet would otherwise stay in memory for ever). Under _press_lock."""
        for device_id in [d for d, q in self._presses.items() if q[-1] <= window_start]:
            del self._presses[device_id]
            self._limited_case.pop(device_id, None)
        self._published_at = {c: t for c, t in self._published_at.items() if t > window_start}
        self._press_sweep_at = max(1024, 2 * len(self._presses))

    def _retransmission(self, tx: Tx, device: Device, alert: protocol.Alert, seen: Alert) -> Outcome:
        """The watch did not get our ack: ack again. If its case has been closed since,
        say that too, so the watch is not left believing help is still on its way."""
        s = tx.session
        case = s.get(AlertCase, seen.case_id) if seen.case_id is not None else None
        self._ack_alert(tx, device.id, alert)
        newest = s.scalar(select(func.max(Alert.id)).where(Alert.device_id == device.id, Alert.mid == alert.mid))
        # Not if the watch has since re-used the id (reset) for an alarm still open: "closed"
        # would name that one.
        if case is not None and case.status not in OPEN_STATUSES and newest == seen.id:
            self._ack_alert(tx, device.id, alert, stage="closed")
        return Outcome(True, duplicate=True, case_id=seen.case_id)

    def _flag(self, s: Session, case: AlertCase, mid: str, flags: list[dict]) -> None:
        """What the watch got wrong in this alarm, on the case (for the operator's eyes)
        and in its timeline."""
        if not flags:
            return
        known = list(case.flags or [])
        fields = {f["field"] for f in known}
        case.flags = known + [f for f in flags if f["field"] not in fields]
        self._event(s, case, "system", "alarm_flagged", {"mid": mid, "flags": flags})

    def _coalesced_press(self, tx: Tx, device: Device, alert: protocol.Alert, case: AlertCase, late: bool,
                         now: datetime, key: str, flags: list[dict]) -> Outcome:
        """A press beyond the budget while a case is open: stored (so a redelivery is a
        duplicate), counted, acked to the watch (or it re-sends), and nothing more, except
        one ``rate_limited`` event per case and a live update at most every
        ``coalesced_publish_s``."""
        s = tx.session
        case.press_count += 1
        if PRIORITY.get(alert.kind, 9) < case.priority:
            case.priority, case.kind = PRIORITY[alert.kind], alert.kind
        case.late = case.late or late
        publish = False
        with self._press_lock:
            previous = self._limited_case.get(device.id)
            first = previous != case.id
            if first:
                self._limited_case[device.id] = case.id
                self._published_at.pop(previous, None)
            last = self._published_at.get(case.id)
            if first or last is None or (now - last).total_seconds() >= self.coalesced_publish_s:
                self._published_at[case.id] = now
                publish = True
        if first:
            self._event(s, case, "system", "rate_limited",
                        {"mid": alert.mid, "kind": alert.kind, "press_count": case.press_count,
                         "budget": self.press_budget, "window_s": self.press_window_s})
            metrics.RATE_LIMITED.labels(alert.kind).inc()
            log.warning("device over its alert press budget: further presses coalesced into the case",
                        extra={"device_id": device.id, "case_id": case.id, "press_count": case.press_count,
                               "budget": self.press_budget, "window_s": self.press_window_s})
        metrics.PRESSES_COALESCED.labels(alert.kind).inc()
        if flags and not {f["field"] for f in flags} <= {f["field"] for f in case.flags or []}:
            self._flag(s, case, alert.mid, flags)
        s.add(Alert(case_id=case.id, device_id=device.id, mid=alert.mid, digest=key, kind=alert.kind,
                    trigger=alert.trigger, device_ts=alert.ts, received_at=now, payload=self._alert_doc(alert)))
        s.flush()  # the unique (device, mid) constraint speaks before the ack is queued
        metrics.ALERTS.labels(alert.kind).inc()
        # The ack is not attached to the case: its command ack would be one case event per press.
        self._ack_alert(tx, device.id, alert)
        if publish:
            view = case_view(s, case, today=now.date())
            tx.after_commit(lambda: self.events.publish(case.tenant_id, {"type": "case", "case": view}))
        return Outcome(True, case_id=case.id)

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

    def _side_effects(self, tx: Tx, device: Device, mid: str, loc, cell, net, *,
                      geofenced: bool = True, now: datetime | None = None) -> list[dict]:
        """What any up message with a position or a network can trigger: the device's
        last cell, a new country's vSIM profiles, geofence crossings (``geofenced``
        False: the batch already knows the wearer has no active geofence)."""
        now = now or self.clock.now()
        if cell is not None:
            cell_dump = cell.model_dump(exclude_none=True)
            if device.last_cell != cell_dump:  # no UPDATE of an unchanged JSON column
                device.last_cell = cell_dump
        mcc = cell.mcc if cell is not None else mcc_of_operator(net.op if net else None)
        vsim_pool.on_country_seen(tx, device, mcc, net.profile if net else None, now, self.sender, self.clock)
        if geofenced and loc is not None and loc.src != "last":
            return geofence.check(tx, device, loc.lat, loc.lon, loc.acc, now, mid, self.events,
                                  present_window_s=self.present_window_s)
        return []

    def _ack_alert(self, tx: Tx, device_id: str, alert: protocol.Alert, case: AlertCase | None = None,
                   stage: str = "received") -> None:
        if any(f["field"] == "mid" for f in alert.flags):
            return  # a mid the cloud made up (protocol.synthetic_mid): the watch knows no such alert
        text = ACK_TEXT.get(alert.kind, "Received") if stage == "received" else "Alarm over"
        cmd = protocol.AlertAckCmd(cid=new_cid(), ts=self.clock.unix(), ref=alert.mid, stage=stage, text=text)
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
        # The newest alert under that id: an older one is from before a reset of the watch.
        alert = s.scalar(select(Alert).where(Alert.device_id == device_id, Alert.mid == ref)
                         .order_by(Alert.id.desc()).limit(1))
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

    def _status(self, tx: Tx, device: Device, st: protocol.Status, now: datetime | None = None) -> Outcome:
        now = now or self.clock.now()
        device.last_seen, device.online = now, True
        if st.fw:
            device.fw = st.fw
        if st.cfg is not None:
            device.cfg_version = st.cfg
        if st.batt and st.batt.pct is not None:
            device.batt_pct = st.batt.pct
        device.last_status = st.model_dump(mode="json", exclude_none=True)
        self._side_effects(tx, device, st.mid, None, None, st.net, now=now)
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

    def _presence(self, tx: Tx, device: Device, p: protocol.Presence, now: datetime | None = None) -> Outcome:
        # The retained "online" and the last will are not messages from the watch
        # itself in the same sense: online is proof of life, the will only a suspicion.
        now = now or self.clock.now()
        if p.online:
            presence.seen(tx, device, now, self.events)
        else:
            presence.last_will(device, now)
        return Outcome(True)

