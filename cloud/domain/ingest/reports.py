"""Location reports, status and presence: stored together, a batch of one or many
in ONE transaction (one commit, one fsync). Devices, open cases and fenced wearers
are read with one query each per batch; location rows are written with one
multi-row insert that skips what is already stored (``cloud.store.bulk``: what it
does not insert was a redelivery, a duplicate); device rows are updated once per
device. Also the command acks, and what any position or network a watch reports
can trigger (``side_effects``)."""
from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from cloud import protocol
from cloud.domain import geofence, presence, reminders, vsim_pool, welfare
from cloud.domain.casefile import open_case_of, open_cases_of
from cloud.domain.cells import CellFix
from cloud.domain.geo import country_of_mcc, mcc_of_operator
from cloud.domain.ingest import callstate
from cloud.domain.ingest.outcome import Outcome
from cloud.domain.ingest.outgoing import publish_case
from cloud.domain.ingest.validate import Parsed, reject
from cloud.domain.uow import Tx, transaction
from cloud.store.bulk import insert_location_points, mark_devices_seen, set_last_cells
from cloud.store.models import AlertCase, CaseEvent, Command, Device, Geofence

if TYPE_CHECKING:
    from cloud.domain.ingest.ingestor import Ingestor


class DeviceRow:
    """What the fast path needs of a device (see ``_devices``), without an ORM object."""
    __slots__ = ("cell_at_load", "country", "id", "last_cell", "tenant_id", "wearer_id")

    def __init__(self, id: str, tenant_id: int, wearer_id: int | None, country: str | None,  # id: the column's name
                 last_cell: dict[str, Any] | None) -> None:
        self.id, self.tenant_id, self.wearer_id, self.country = id, tenant_id, wearer_id, country
        self.last_cell = self.cell_at_load = last_cell


class _Batch:
    """What a batch has read in advance: its devices and, for its location reports,
    their positions, which of them were already stored, open cases and geofences."""

    def __init__(self) -> None:
        self.known: dict[str, Any] = {}                                   # device id -> row (plain tuple)
        self.fixes: dict[int, protocol.Location | None] = {}    # item -> position, first report of a mid only
        self.dup_keys: set[tuple[str, str]] = set()             # (device, mid) stored before this batch
        self.open_cases: dict[str, AlertCase] = {}
        self.fenced: set[int] = set()                           # wearers with an active geofence
        self.touched: dict[int, AlertCase] = {}                 # cases moved by this batch


def store(ing: Ingestor, group: list[Parsed]) -> dict[int, Outcome]:
    """Store ``loc``/``status``/``presence`` messages in one transaction; one outcome
    per item (keyed by ``Parsed.i``). An unknown device is rejected here."""
    out: dict[int, Outcome] = {}
    with transaction(ing.sm) as tx:
        s, b = tx.session, _Batch()
        # Device rows as plain tuples first: an ORM object per device is the dearest
        # part of a batch of location reports from many devices.
        b.known = {r.id: r for r in s.execute(
            select(Device.id, Device.tenant_id, Device.wearer_id, Device.presence, Device.country,
                   Device.last_cell).where(Device.id.in_({p.device_id for p in group})))}
        now = ing.clock.now()
        locs = [p for p in group if p.kind == "loc" and p.device_id in b.known]
        if locs:
            _read_locations(ing, s, b, locs, now)
        devices = _devices(s, group, b)
        now = _apply(ing, tx, group, devices, b, now, out)
        lite = [d for d in devices.values() if isinstance(d, DeviceRow)]
        if lite:
            mark_devices_seen(s, [d.id for d in lite], now)
            set_last_cells(s, [(d.id, d.last_cell) for d in lite if d.last_cell is not d.cell_at_load])
        if b.touched:
            s.flush()
            at = ing.clock.now()
            for case in b.touched.values():
                publish_case(tx, ing.events, case, at)
    return out


def _read_locations(ing: Ingestor, s: Session, b: _Batch, locs: list[Parsed], now: datetime) -> None:
    """Location rows first, in one multi-row INSERT .. ON CONFLICT DO NOTHING RETURNING:
    what it does not return was already stored (a redelivery), and is then a
    duplicate that changes nothing. Then the open cases and fenced wearers."""
    rows: list[dict[str, Any]] = []
    keys: set[tuple[str, str]] = set()
    for p in locs:
        rep = p.msg
        assert isinstance(rep, protocol.LocationReport)  # ``locs`` are the batch's "loc" messages
        key = (p.device_id, rep.mid)
        if key in keys:
            continue  # the same report twice in one batch: the second is a duplicate
        keys.add(key)
        loc = b.fixes[p.i] = position_of(ing, rep)
        if loc is not None:
            rows.append({"device_id": p.device_id, "mid": rep.mid, "lat": loc.lat, "lon": loc.lon,
                         "acc": loc.acc, "src": loc.src, "device_ts": rep.ts, "received_at": now,
                         "reason": rep.reason, "ref": rep.ref})
    if rows:
        b.dup_keys = {(r["device_id"], r["mid"]) for r in rows} - insert_location_points(s, rows)
    loc_devices = {p.device_id for p in locs}
    b.open_cases = open_cases_of(s, loc_devices)
    wearers = {b.known[d].wearer_id for d in loc_devices if b.known[d].wearer_id is not None}
    if wearers:
        b.fenced = set(s.scalars(select(Geofence.wearer_id).where(Geofence.wearer_id.in_(wearers),
                                                                  Geofence.active.is_(True))))


def _devices(s: Session, group: list[Parsed], b: _Batch) -> dict[str, Device | DeviceRow]:
    """The fast path: a location report from a device that is online, has no geofence
    and stays in its country only moves last_seen (and maybe last_cell): a
    ``DeviceRow``. Anything else (status, presence, coming back online, a new
    country, geofences) goes through the ORM and the domain functions (presence,
    vSIM, geofence) that every message goes through."""
    slow: set[str] = set()
    for p in group:
        r = b.known.get(p.device_id)
        if r is None or p.device_id in slow:
            continue
        rep = p.msg
        if not isinstance(rep, protocol.LocationReport) or r.presence != "online" or r.wearer_id in b.fenced:
            slow.add(p.device_id)  # not a location report ("status", "presence"), or not the fast path
            continue
        country = country_of_mcc(rep.cell.mcc) if rep.cell is not None else None
        if country is not None and country != r.country:
            slow.add(p.device_id)
    devices: dict[str, Device | DeviceRow] = {
        d: DeviceRow(r.id, r.tenant_id, r.wearer_id, r.country, r.last_cell)
        for d, r in b.known.items() if d not in slow}
    if slow:
        devices.update({d.id: d for d in s.scalars(select(Device).where(Device.id.in_(slow)))})
    return devices


def _apply(ing: Ingestor, tx: Tx, group: list[Parsed], devices: dict[str, Device | DeviceRow], b: _Batch,
           now: datetime,
           out: dict[int, Outcome]) -> datetime:
    """Each message in turn; returns the batch's time. One reading of the clock for the
    batch (it is one commit), taken again once the write lock is ours (SQLite), as
    for an alert: case events are then stamped in the order of their ids."""
    locked = False
    for p in group:
        device = devices.get(p.device_id)
        if device is None:
            out[p.i] = reject("unknown_device", p.topic, p.device_id)
            continue
        if isinstance(device, Device):
            if p.kind != "presence":
                presence.seen(tx, device, now, ing.events)
            if not locked:
                tx.session.flush()
                locked = True
                now = ing.clock.now()
        msg = p.msg
        if isinstance(msg, protocol.LocationReport):  # kind "loc"
            if p.i not in b.fixes or (p.device_id, msg.mid) in b.dup_keys:
                out[p.i] = Outcome(True, duplicate=True)
            else:
                out[p.i] = _loc(ing, tx, device, msg, b.fixes[p.i], now, b)
        else:
            assert isinstance(device, Device)  # only a location report takes the fast path (_devices)
            if isinstance(msg, protocol.Status):
                out[p.i] = _status(ing, tx, device, msg, now)
                if msg.call is not None:  # a call's state: on its case's timeline (callstate.py)
                    case = callstate.record(tx, device, msg, now)
                    if case is not None:
                        b.touched[case.id] = case
                if msg.reminder is not None:  # a dose confirmed or missed (reminders.py)
                    reminders.record_report(tx.session, device, msg, now)
            else:
                assert isinstance(msg, protocol.Presence)  # the third of BATCH_KINDS
                out[p.i] = _presence(ing, tx, device, msg, now)
        out[p.i].kind, out[p.i].device_id = p.kind, p.device_id
    return now


def _loc(ing: Ingestor, tx: Tx, device: Device | DeviceRow, rep: protocol.LocationReport,
         loc: protocol.Location | None, now: datetime, b: _Batch) -> Outcome:
    """A location report whose row (if it has a position) the batch has just inserted."""
    crossings = side_effects(ing, tx, device, rep.mid, loc, rep.cell, None,
                             geofenced=device.wearer_id in b.fenced, now=now)
    for info in crossings:
        if info.get("case_id") is not None:  # a geofence case opened or joined just now
            b.open_cases[device.id] = tx.session.get_one(AlertCase, info["case_id"])
    if rep.batt and rep.batt.pct is not None:
        note_battery(tx.session, device, rep.batt.pct, now)
    case = b.open_cases.get(device.id)
    if case is not None and rep.vitals and rep.vitals.hr is not None:
        case.heart_rate, case.heart_rate_at = rep.vitals.hr, now  # vitals update live during a case
        b.touched[case.id] = case
    if loc is None:
        return Outcome(True, case_id=case.id if case else None)
    # A coarse cell fix never overwrites a GNSS position of the case.
    if case is not None and not (loc.src == "cell" and case.loc_src == "gnss"):
        case.lat, case.lon, case.acc, case.loc_src, case.loc_ts = loc.lat, loc.lon, loc.acc, loc.src, loc.ts
        b.touched[case.id] = case
    return Outcome(True, case_id=case.id if case else None)


def note_battery(s: Session, device: Device | DeviceRow, pct: int, now: datetime) -> None:
    """The device's latest battery reading and when it came (a fast-path row has no ORM object)."""
    if isinstance(device, Device):
        device.batt_pct, device.batt_at = pct, now
    else:
        s.execute(update(Device).where(Device.id == device.id).values(batt_pct=pct, batt_at=now))


def _status(ing: Ingestor, tx: Tx, device: Device, st: protocol.Status, now: datetime) -> Outcome:
    device.last_seen, device.online = now, True
    if st.fw:
        device.fw = st.fw
    if st.cfg is not None:
        device.cfg_version = st.cfg
    if st.batt and st.batt.pct is not None:
        device.batt_pct, device.batt_at = st.batt.pct, now
    if st.vitals and st.vitals.hr is not None:
        case = open_case_of(tx.session, device.id)
        if case is not None:  # vitals update live during a case
            case.heart_rate, case.heart_rate_at = st.vitals.hr, now
            publish_case(tx, ing.events, case, now)
    # A call's state and a dose are events, not device state: callstate.py, reminders.py.
    device.last_status = st.model_dump(mode="json", exclude_none=True, exclude={"call", "reminder"})
    welfare.on_status(tx, device, st, now, ing.events)  # movement, wear, the check-in's answer
    side_effects(ing, tx, device, st.mid, None, None, st.net, now=now)
    return Outcome(True)


def _presence(ing: Ingestor, tx: Tx, device: Device, p: protocol.Presence, now: datetime) -> Outcome:
    # The retained "online" and the last will are not messages from the watch
    # itself in the same sense: online is proof of life, the will only a suspicion.
    if p.online:
        presence.seen(tx, device, now, ing.events)
    else:
        presence.last_will(device, now)
    return Outcome(True)


def command_ack(ing: Ingestor, tx: Tx, device: Device, ack: protocol.CommandAck) -> Outcome:
    """The watch's answer to a command: on the command, and on its case's timeline."""
    s = tx.session
    cmd = s.get(Command, ack.cid)
    if cmd is None or cmd.device_id != device.id:
        raise protocol.Rejected("unknown_command", ack.cid)
    if cmd.status == "acked":
        return Outcome(True, duplicate=True)
    late = cmd.status == "expired"  # acked after its time to live: record it, it did happen
    cmd.status = "acked" if ack.ok else "failed"
    cmd.acked_at = ing.clock.now()
    if cmd.case_id is not None:
        case = s.get_one(AlertCase, cmd.case_id)  # the foreign key keeps it
        s.add(CaseEvent(case_id=case.id, at=ing.clock.now(), actor=f"device:{device.id}", action="command_acked",
                        detail={"cid": cmd.cid, "type": cmd.type, "ok": ack.ok, "err": ack.err,
                                "stage": cmd.payload.get("stage"), **({"late": True} if late else {})}))
        publish_case(tx, ing.events, case, ing.clock.now())
    return Outcome(True, case_id=cmd.case_id)


def position_of(ing: Ingestor, rep: protocol.LocationReport) -> protocol.Location | None:
    """The report's position, or its cell's."""
    loc = rep.loc
    if loc is None:
        fix = cell_fix(ing, rep.cell)
        if fix is not None:
            loc = protocol.Location(lat=fix.lat, lon=fix.lon, acc=fix.range_m, src="cell", ts=rep.ts)
    return loc


def cell_fix(ing: Ingestor, cell: protocol.Cell | None) -> CellFix | None:
    if ing.cells is None or cell is None:
        return None
    return ing.cells.lookup(cell.mcc, cell.mnc, cell.lac, cell.cid)


def side_effects(ing: Ingestor, tx: Tx, device: Device | DeviceRow, mid: str, loc: protocol.Location | None,
                 cell: protocol.Cell | None, net: protocol.Net | None, *,
                 geofenced: bool = True, now: datetime | None = None, alarm: bool = False) -> list[dict[str, Any]]:
    """What any up message with a position or a network can trigger: the device's
    last cell, a new country's vSIM profiles, geofence crossings (``geofenced``
    False: the batch already knows the wearer has no active geofence)."""
    now = now or ing.clock.now()
    if cell is not None:
        cell_dump = cell.model_dump(exclude_none=True)
        if device.last_cell != cell_dump:  # no UPDATE of an unchanged JSON column
            device.last_cell = cell_dump
    if isinstance(device, DeviceRow):
        # The fast path (_devices): a device that stays in its country and whose wearer
        # has no geofence; neither the vSIM pool nor the geofences have anything to do.
        return []
    mcc = cell.mcc if cell is not None else mcc_of_operator(net.op if net else None)
    vsim_pool.on_country_seen(tx, device, mcc, net.profile if net else None, now, ing.sender, ing.clock,
                              reported=net is not None, alarm=alarm)
    if geofenced and loc is not None and loc.src != "last":
        return geofence.check(tx, device, loc.lat, loc.lon, loc.acc, now, mid, ing.events,
                              present_window_s=ing.present_window_s, notifier=ing.notifier)
    return []
