"""SQLAlchemy models. Schema changes go through Alembic (cloud/migrations)."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Tenant(Base):
    """A B2B partner: an insurer, a care home, a lone-worker employer."""
    __tablename__ = "tenants"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    # Where this partner wants case notifications POSTed (its own systems).
    webhook_url: Mapped[str | None] = mapped_column(String(400))
    # Who hears of a missed dose (cloud/domain/reminders.py): "family" (the first
    # contact, notified) or "centre" (a low-priority case in the operators' queue).
    missed_dose_to: Mapped[str] = mapped_column(String(8), default="family", server_default="family")


class CallCentre(Base):
    """An alarm receiving centre. Coverage: ``countries`` (ISO 3166 alpha-2) and
    ``areas`` (``{"type":"circle","lat","lon","radius_m"}`` or
    ``{"type":"polygon","points":[[lat,lon],...]}``); none of either covers
    everywhere (a national backup). ``hours``: a list of
    ``{"days":[0..6],"from":"HH:MM","to":"HH:MM"}`` in ``timezone``; empty is 24/7."""
    __tablename__ = "call_centres"
    id: Mapped[int] = mapped_column(primary_key=True)
    # Unique among the centres a tenant sees (the domain's rule), not platform-wide: a
    # platform-wide key would tell a tenant that another tenant's private centre exists.
    name: Mapped[str] = mapped_column(String(200), index=True)
    phone: Mapped[str | None] = mapped_column(String(32))
    owner_tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenants.id"))
    countries: Mapped[list | None] = mapped_column(JSON)
    areas: Mapped[list | None] = mapped_column(JSON)
    languages: Mapped[list | None] = mapped_column(JSON)
    hours: Mapped[list | None] = mapped_column(JSON)
    timezone: Mapped[str | None] = mapped_column(String(64))


class Contract(Base):
    """Which call centres answer a tenant's alarms, in order of preference."""
    __tablename__ = "contracts"
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    centre_id: Mapped[int] = mapped_column(ForeignKey("call_centres.id"), primary_key=True)
    rank: Mapped[int] = mapped_column(Integer, default=0)


class Operator(Base):
    __tablename__ = "operators"
    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), index=True)
    centre_id: Mapped[int | None] = mapped_column(ForeignKey("call_centres.id"))
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16), default="operator")  # operator | supervisor | admin
    # Presence: the last authenticated API/WebSocket activity (record_operator_seen).
    last_seen_at: Mapped[datetime | None] = mapped_column(DateTime)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class OperatorSession(Base):
    __tablename__ = "operator_sessions"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    operator_id: Mapped[int] = mapped_column(ForeignKey("operators.id"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    expires_at: Mapped[datetime] = mapped_column(DateTime)  # the absolute lifetime's end
    # The idle lifetime counts from here (written at most once a minute, cloud/domain/sessions.py).
    last_seen_at: Mapped[datetime | None] = mapped_column(DateTime)


class LoginThrottle(Base):
    """Failed logins of one account from one client address (kind "account"), or
    from one client address for any account (kind "address"), and until when that
    pair or address must wait (exponential backoff, cloud/domain/throttle.py)."""
    __tablename__ = "login_throttles"
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(8))  # account | address
    username: Mapped[str | None] = mapped_column(String(64))
    client: Mapped[str] = mapped_column(String(64), index=True)
    tenant_id: Mapped[int | None] = mapped_column(Integer, index=True)  # the account's, when it exists
    failures: Mapped[int] = mapped_column(Integer, default=0)
    refused: Mapped[int] = mapped_column(Integer, default=0)  # attempts turned away while blocked
    last_failure_at: Mapped[datetime | None] = mapped_column(DateTime)
    blocked_until: Mapped[datetime | None] = mapped_column(DateTime)


class Wearer(Base):
    __tablename__ = "wearers"
    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    birth_date: Mapped[date | None] = mapped_column(Date)
    language: Mapped[str | None] = mapped_column(String(8))
    home_address: Mapped[str | None] = mapped_column(String(400))
    home_lat: Mapped[float | None] = mapped_column(Float)
    home_lon: Mapped[float | None] = mapped_column(Float)
    medical_notes: Mapped[str | None] = mapped_column(Text)
    photo_url: Mapped[str | None] = mapped_column(String(400))
    timezone: Mapped[str | None] = mapped_column(String(64))  # for geofence schedules (school hours)
    # The wearer's file (cloud/domain/wearerfile.py). The key-safe code is never in a
    # case or wearer view: it is revealed on its own, audited, action.
    languages: Mapped[str | None] = mapped_column(String(200))
    gp: Mapped[str | None] = mapped_column(String(400))
    allergies: Mapped[str | None] = mapped_column(Text)
    medication: Mapped[str | None] = mapped_column(Text)
    mobility: Mapped[str | None] = mapped_column(String(400))
    key_safe_code: Mapped[str | None] = mapped_column(String(64))
    key_holders: Mapped[str | None] = mapped_column(Text)
    # Welfare settings (cloud/domain/welfare.py): check-in time and window, night hours,
    # inactivity and not-worn limits.
    welfare: Mapped[dict | None] = mapped_column(JSON)


class Contact(Base):
    """An emergency contact of a wearer. ``rank`` is the cascade order (0 first);
    the contacts' numbers are also the watch's call whitelist."""
    __tablename__ = "contacts"
    id: Mapped[int] = mapped_column(primary_key=True)
    wearer_id: Mapped[int] = mapped_column(ForeignKey("wearers.id"), index=True)
    rank: Mapped[int] = mapped_column(Integer, default=0)
    name: Mapped[str] = mapped_column(String(200))
    relation: Mapped[str | None] = mapped_column(String(64))
    phone: Mapped[str] = mapped_column(String(32))
    email: Mapped[str | None] = mapped_column(String(200))
    # Channels this contact accepts ("email", "sms", "webhook"); null means every one that applies.
    channels: Mapped[list | None] = mapped_column(JSON)


class Device(Base):
    __tablename__ = "devices"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # usually the IMEI
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), index=True)
    wearer_id: Mapped[int | None] = mapped_column(ForeignKey("wearers.id"))
    # Devices authenticate only at the broker, so their secret is kept only as
    # Mosquitto's $7$ PBKDF2-SHA512 hash. The secret is 144 random bits: no
    # slow hash is needed against guessing, and fleets of 50k provision fast.
    broker_hash: Mapped[str] = mapped_column(String(200))
    fw: Mapped[str | None] = mapped_column(String(32))
    cfg_version: Mapped[int | None] = mapped_column(Integer)
    online: Mapped[bool] = mapped_column(Boolean, default=False)
    last_seen: Mapped[datetime | None] = mapped_column(DateTime)
    batt_pct: Mapped[int | None] = mapped_column(Integer)
    batt_at: Mapped[datetime | None] = mapped_column(DateTime)  # when batt_pct was received
    last_status: Mapped[dict | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    # Presence with hysteresis: online -> suspect (silent or last will) -> offline (after the grace).
    presence: Mapped[str] = mapped_column(String(8), default="unknown")  # unknown|online|suspect|offline
    suspect_since: Mapped[datetime | None] = mapped_column(DateTime)
    heartbeat_s: Mapped[int | None] = mapped_column(Integer)  # from its latest config
    country: Mapped[str | None] = mapped_column(String(2))  # from the MCC it last reported
    home_country: Mapped[str | None] = mapped_column(String(2))  # its own SIM's (the first country seen)
    vsim_profile: Mapped[str | None] = mapped_column(String(64))
    last_cell: Mapped[dict | None] = mapped_column(JSON)
    secret_rotated_at: Mapped[datetime | None] = mapped_column(DateTime)
    phone_number: Mapped[str | None] = mapped_column(String(32))  # the watch's own number (E.164)
    sim_number: Mapped[str | None] = mapped_column(String(32))    # its SIM's ICCID
    # How it talks to the cloud: "openpers" (MQTT, docs/protocol.md), or through the watch
    # gateway (docs/gateway.md) "setracker" (the 3G [SG*id*len*...] frames) or "iw" (IWAPxx#).
    # A gateway watch's id is its IMEI: the only identity those protocols carry.
    protocol: Mapped[str] = mapped_column(String(16), default="openpers", server_default="openpers")
    # The zone (1-999) an alarm centre's receiver knows this watch by (docs/forwarding.md).
    receiver_zone: Mapped[int | None] = mapped_column(Integer)
    # What the watch said of its wearer (cloud/domain/welfare.py): last movement, worn or
    # not since when, the last check-in answer, which alarms were raised and the battery latch.
    welfare_state: Mapped[dict | None] = mapped_column(JSON)


class AlertCase(Base):
    """One emergency, from the first alert to the operator's resolution.

    Repeated presses and falls while a case is open join it (``press_count``)."""
    __tablename__ = "alert_cases"
    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id"))
    wearer_id: Mapped[int | None] = mapped_column(ForeignKey("wearers.id"))
    centre_id: Mapped[int | None] = mapped_column(ForeignKey("call_centres.id"))
    kind: Mapped[str] = mapped_column(String(16))
    priority: Mapped[int] = mapped_column(Integer)  # lower is more urgent
    status: Mapped[str] = mapped_column(String(16))  # new | routed | claimed | in_call | resolved
    first_mid: Mapped[str] = mapped_column(String(64))
    press_count: Mapped[int] = mapped_column(Integer, default=1)
    wearer_cancelled: Mapped[bool] = mapped_column(Boolean, default=False)
    late: Mapped[bool] = mapped_column(Boolean, default=False)
    opened_at: Mapped[datetime] = mapped_column(DateTime)
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime)
    claimed_by: Mapped[int | None] = mapped_column(ForeignKey("operators.id"))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime)
    outcome: Mapped[str | None] = mapped_column(String(32))
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    acc: Mapped[float | None] = mapped_column(Float)
    loc_src: Mapped[str | None] = mapped_column(String(8))
    loc_ts: Mapped[int | None] = mapped_column(BigInteger)
    batt_pct: Mapped[int | None] = mapped_column(Integer)
    heart_rate: Mapped[int | None] = mapped_column(Integer)
    heart_rate_at: Mapped[datetime | None] = mapped_column(DateTime)  # when heart_rate was received
    net_profile: Mapped[str | None] = mapped_column(String(64))
    # What the operator must know the watch got wrong: fields dropped from its alarms,
    # a clock not credible, no position at all. [{"field": .., "problem": .., ...}]
    flags: Mapped[list | None] = mapped_column(JSON)
    # Lifecycle and escalation bookkeeping.
    routed_at: Mapped[datetime | None] = mapped_column(DateTime)
    in_call_at: Mapped[datetime | None] = mapped_column(DateTime)
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    escalated_at: Mapped[datetime | None] = mapped_column(DateTime)
    tried_centres: Mapped[list | None] = mapped_column(JSON)
    reminded_at: Mapped[datetime | None] = mapped_column(DateTime)
    cascade_next: Mapped[int] = mapped_column(Integer, default=0)  # index of the next contact to notify
    cascade_at: Mapped[datetime | None] = mapped_column(DateTime)

    __table_args__ = (Index("ix_cases_open", "tenant_id", "status"),
                      Index("ix_cases_device_status", "device_id", "status"))


class Alert(Base):
    """Every alert message as received. A retransmission is the same (device, mid)
    with the same content (``digest``) within the retry window; the same mid with
    other content is a new alarm (a watch that was wiped re-uses its ids)."""
    __tablename__ = "alerts"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("alert_cases.id"), index=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id"))
    mid: Mapped[str] = mapped_column(String(64))
    digest: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    trigger: Mapped[str | None] = mapped_column(String(16))
    device_ts: Mapped[int | None] = mapped_column(BigInteger)
    received_at: Mapped[datetime] = mapped_column(DateTime)
    payload: Mapped[dict] = mapped_column(JSON)

    __table_args__ = (UniqueConstraint("device_id", "mid", "digest", name="uq_alerts_device_mid_digest"),)


class CaseEvent(Base):
    """The case timeline and its audit trail: who did what, when."""
    __tablename__ = "case_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("alert_cases.id"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime)
    actor: Mapped[str] = mapped_column(String(100))  # "device:<id>", "operator:<username>", "system"
    action: Mapped[str] = mapped_column(String(32))
    detail: Mapped[dict | None] = mapped_column(JSON)


class LocationPoint(Base):
    """Location history, kept apart from cases (it grows fast and is pruned)."""
    __tablename__ = "location_points"
    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id"))
    mid: Mapped[str] = mapped_column(String(64))
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    acc: Mapped[float | None] = mapped_column(Float)
    src: Mapped[str] = mapped_column(String(8))
    device_ts: Mapped[int | None] = mapped_column(BigInteger)
    received_at: Mapped[datetime] = mapped_column(DateTime)
    reason: Mapped[str | None] = mapped_column(String(16))
    ref: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (UniqueConstraint("device_id", "mid", name="uq_loc_device_mid"),
                      Index("ix_loc_device_time", "device_id", "received_at"))


class Command(Base):
    """A command to a watch, tracked sent -> acked (-> expired, later)."""
    __tablename__ = "commands"
    cid: Mapped[str] = mapped_column(String(64), primary_key=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id"), index=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("alert_cases.id"))
    type: Mapped[str] = mapped_column(String(16))
    payload: Mapped[dict] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))  # queued | sent | acked | failed | expired
    created_at: Mapped[datetime] = mapped_column(DateTime)
    acked_at: Mapped[datetime | None] = mapped_column(DateTime)
    expired_at: Mapped[datetime | None] = mapped_column(DateTime)


class AuditEntry(Base):
    """Every operator action and every security-relevant event."""
    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime, index=True)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(64))
    tenant_id: Mapped[int | None] = mapped_column(Integer)
    target: Mapped[str | None] = mapped_column(String(100))
    detail: Mapped[dict | None] = mapped_column(JSON)

    __table_args__ = (Index("ix_audit_log_tenant_at", "tenant_id", "at"),)


class DeviceConfig(Base):
    """Every config version sent to a device (published retained on ``config``)."""
    __tablename__ = "device_configs"
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    body: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    actor: Mapped[str] = mapped_column(String(100))


class Geofence(Base):
    """A wearer's zone: a circle (lat, lon, radius_m) or a polygon (points [[lat, lon], ...]).
    ``alert_on_exit`` with a ``schedule`` (same shape as centre hours) opens a case when
    the wearer leaves during those hours: a child leaving school during school hours."""
    __tablename__ = "geofences"
    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), index=True)
    wearer_id: Mapped[int] = mapped_column(ForeignKey("wearers.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    shape: Mapped[str] = mapped_column(String(8))  # circle | polygon
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    radius_m: Mapped[float | None] = mapped_column(Float)
    points: Mapped[list | None] = mapped_column(JSON)
    schedule: Mapped[list | None] = mapped_column(JSON)
    alert_on_exit: Mapped[bool] = mapped_column(Boolean, default=False)
    alert_on_enter: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class GeofenceState(Base):
    """Whether a device was last seen inside a geofence: enter/exit are its changes."""
    __tablename__ = "geofence_states"
    geofence_id: Mapped[int] = mapped_column(ForeignKey("geofences.id"), primary_key=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id"), primary_key=True)
    inside: Mapped[bool] = mapped_column(Boolean)
    changed_at: Mapped[datetime] = mapped_column(DateTime)


class GeofenceEvent(Base):
    __tablename__ = "geofence_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    geofence_id: Mapped[int] = mapped_column(ForeignKey("geofences.id"), index=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id"))
    kind: Mapped[str] = mapped_column(String(8))  # enter | exit
    at: Mapped[datetime] = mapped_column(DateTime)
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("alert_cases.id"))


class VsimProfilePool(Base):
    """A local virtual-SIM profile the cloud can hand to watches in that country."""
    __tablename__ = "vsim_profiles"
    id: Mapped[int] = mapped_column(primary_key=True)
    country: Mapped[str] = mapped_column(String(2), index=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    mccmnc: Mapped[list] = mapped_column(JSON)
    apn: Mapped[str | None] = mapped_column(String(100))
    priority: Mapped[int] = mapped_column(Integer, default=0)  # lower is better
    cost: Mapped[float] = mapped_column(Float, default=0)  # per MB, tie-break
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # A tenant's stock (cloud/domain/vsim_stock.py): one row one profile, held by one
    # watch at a time. Null tenant: the platform's shared list, sent as a list.
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenants.id"), index=True)
    iccid: Mapped[str | None] = mapped_column(String(22), index=True, unique=True)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime)  # past it: never handed out
    device_id: Mapped[str | None] = mapped_column(ForeignKey("devices.id"), index=True, unique=True)
    allocated_at: Mapped[datetime | None] = mapped_column(DateTime)
    away_since: Mapped[datetime | None] = mapped_column(DateTime)  # its holder reports another country since


class VsimThreshold(Base):
    """Stock at or below ``low_at`` free profiles is "running low": per country, or
    for every country of the tenant (``country`` "*")."""
    __tablename__ = "vsim_thresholds"
    __table_args__ = (UniqueConstraint("tenant_id", "country", name="uq_vsim_thresholds_tenant_country"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    country: Mapped[str] = mapped_column(String(2))
    low_at: Mapped[int] = mapped_column(Integer)


class VsimLowWarning(Base):
    """A low stock, warned once; deleted when the stock is above the threshold again."""
    __tablename__ = "vsim_low_warnings"
    __table_args__ = (UniqueConstraint("tenant_id", "country", name="uq_vsim_low_warnings_tenant_country"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    country: Mapped[str] = mapped_column(String(2))
    free: Mapped[int] = mapped_column(Integer)
    low_at: Mapped[int] = mapped_column(Integer)
    raised_at: Mapped[datetime] = mapped_column(DateTime)


class Notification(Base):
    """One delivery attempt to a contact on one channel."""
    __tablename__ = "notifications"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("alert_cases.id"), index=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"))
    channel: Mapped[str] = mapped_column(String(16))
    target: Mapped[str | None] = mapped_column(String(400))
    ok: Mapped[bool] = mapped_column(Boolean)
    detail: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime)


class DeadLetter(Base):
    """A message that could not be stored for a reason that retrying cannot cure (a
    constraint, a data error, a bug): kept raw with its reason, counted, and shown to
    the tenant's staff, so it never blocks the messages behind it. Repeats of the
    same bytes from the same device add to ``count``."""
    __tablename__ = "dead_letters"
    id: Mapped[int] = mapped_column(primary_key=True)
    received_at: Mapped[datetime] = mapped_column(DateTime)
    last_at: Mapped[datetime] = mapped_column(DateTime)
    count: Mapped[int] = mapped_column(Integer, default=1)
    device_id: Mapped[str | None] = mapped_column(String(64))  # as on the topic; maybe no such device
    tenant_id: Mapped[int | None] = mapped_column(Integer)  # the device's, when it is known
    topic: Mapped[str] = mapped_column(String(256))
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    digest: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(64))
    detail: Mapped[str | None] = mapped_column(Text)
    case_id: Mapped[int | None] = mapped_column(Integer)  # the alarm's case, when one was opened regardless

    __table_args__ = (Index("ix_dead_letters_tenant", "tenant_id", "id"),
                      Index("ix_dead_letters_device_digest", "device_id", "digest"))


class AlarmReceiver(Base):
    """An alarm-receiving centre's own receiver that the tenant's alarms are forwarded
    to over SIA DC-09 (docs/forwarding.md): where, in which format, under which
    account, receiver and line numbers, with which AES key, and its backup."""
    __tablename__ = "alarm_receivers"
    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    host: Mapped[str] = mapped_column(String(255))
    port: Mapped[int] = mapped_column(Integer)
    backup_host: Mapped[str | None] = mapped_column(String(255))
    backup_port: Mapped[int | None] = mapped_column(Integer)
    protocol: Mapped[str] = mapped_column(String(3), default="tcp")  # tcp | udp
    fmt: Mapped[str] = mapped_column(String(8), default="ADM-CID")  # ADM-CID | SIA-DCS
    account: Mapped[str] = mapped_column(String(16))
    receiver_no: Mapped[str | None] = mapped_column(String(6))
    line_no: Mapped[str] = mapped_column(String(6), default="0")
    aes_key: Mapped[str | None] = mapped_column(String(64))
    key_encoding: Mapped[str] = mapped_column(String(5), default="hex")  # hex | ascii
    poll_s: Mapped[int] = mapped_column(Integer, default=0)  # NULL supervision polls; 0: none
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    next_seq: Mapped[int] = mapped_column(Integer, default=1)
    clock_offset_s: Mapped[float] = mapped_column(Float, default=0.0)  # learnt from a NAK
    last_poll_at: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime)


class ForwardOutbox(Base):
    """One event to deliver to one receiver, written in the same transaction as the
    alarm it reports, delivered after the commit and kept until acknowledged or
    given up (a restart resumes from here)."""
    __tablename__ = "forward_outbox"
    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(Integer)
    receiver_id: Mapped[int] = mapped_column(ForeignKey("alarm_receivers.id", ondelete="CASCADE"))
    case_id: Mapped[int | None] = mapped_column(Integer)
    event: Mapped[str] = mapped_column(String(16))  # sos | fall | low_battery | offline | geofence | test
    qualifier: Mapped[int] = mapped_column(Integer)  # 1 new event, 3 restore
    zone: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    status: Mapped[str] = mapped_column(String(8), default="pending")  # pending | acked | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_at: Mapped[datetime] = mapped_column(DateTime)
    last_error: Mapped[str | None] = mapped_column(String(400))
    done_at: Mapped[datetime | None] = mapped_column(DateTime)
    via: Mapped[str | None] = mapped_column(String(8))  # primary | backup
    seq: Mapped[int | None] = mapped_column(Integer)  # kept for its retransmissions, as DC-09 asks
    alerted_at: Mapped[datetime | None] = mapped_column(DateTime)  # the supervisors were told it failed

    __table_args__ = (Index("ix_forward_outbox_due", "status", "next_at"),
                      Index("ix_forward_outbox_heads", "status", "receiver_id", "id"))


class ReminderPlan(Base):
    """A device's medication reminders as its latest config set them, kept beside the
    config so that the cloud can tell a dose due from a dose missed without reading
    every config: ``next_check_at`` is the next time a dose's window closes."""
    __tablename__ = "reminder_plans"
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id"), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), index=True)
    reminders: Mapped[list] = mapped_column(JSON)
    since: Mapped[datetime] = mapped_column(DateTime)  # doses due before the plan was set are not judged
    next_check_at: Mapped[datetime | None] = mapped_column(DateTime, index=True)


class ReminderDose(Base):
    """One dose of one reminder on one local day: confirmed (the wearer pressed in time,
    on the watch's word) or missed (the watch said so, or the cloud inferred it when no
    word came by the window's end). One row per dose, so adherence counts each once."""
    __tablename__ = "reminder_doses"
    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id"))
    wearer_id: Mapped[int | None] = mapped_column(ForeignKey("wearers.id"))
    reminder_id: Mapped[str] = mapped_column(String(16))
    day: Mapped[date] = mapped_column(Date)  # the dose's local day
    due_at: Mapped[datetime] = mapped_column(DateTime)
    status: Mapped[str] = mapped_column(String(9))  # confirmed | missed
    source: Mapped[str] = mapped_column(String(5))  # watch | cloud: who said so first
    text: Mapped[str | None] = mapped_column(String(160))
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime)  # the press, on the watch's clock
    mid: Mapped[str | None] = mapped_column(String(64))  # the status that reported it
    late_report: Mapped[bool] = mapped_column(Boolean, default=False)  # confirmed after the cloud said missed
    recorded_at: Mapped[datetime] = mapped_column(DateTime)
    notified_at: Mapped[datetime | None] = mapped_column(DateTime)  # a missed dose told to family or centre
    notified_to: Mapped[str | None] = mapped_column(String(8))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("alert_cases.id"))

    __table_args__ = (UniqueConstraint("device_id", "reminder_id", "day", name="uq_reminder_dose"),
                      Index("ix_reminder_doses_wearer_day", "wearer_id", "day"),
                      Index("ix_reminder_doses_pending", "status", "notified_at"))
