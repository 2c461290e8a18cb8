"""Configuration, from environment variables prefixed ``PERS_`` (or a ``.env`` file).

The defaults need nothing set up by hand: SQLite under the data directory and an
embedded Mosquitto that ``pers`` starts. At scale, set ``PERS_DATABASE_URL`` to
PostgreSQL and ``PERS_BROKER=external`` with ``PERS_MQTT_HOST``/``PORT``.
"""
from __future__ import annotations

import ipaddress
import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# token_urlsafe(16) is 22 characters, 128 bits; MQTT forbids / + # in a share name.
SHARED_GROUP_MIN_CHARS = 22
SHARED_GROUP_RE = re.compile(r"[A-Za-z0-9_-]{%d,128}" % SHARED_GROUP_MIN_CHARS)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PERS_", env_file=".env", extra="ignore")

    data_dir: Path = Path("var")
    database_url: str | None = None

    broker: Literal["embedded", "external"] = "embedded"
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 1883
    mqtt_username: str = "pers-cloud"
    mqtt_password: str | None = None  # embedded: generated into the data dir
    mqtt_client_id: str | None = None  # defaults to the username (Mosquitto enforces it)
    # The embedded broker's TLS listener, the one the watches use (mqtt_port stays for
    # loopback clients: the cloud itself and the tests). 0: no TLS listener. Its
    # certificate is made under <data>/broker/tls/ for mqtt_tls_names (comma-separated
    # host names and addresses the watches dial), unless the operator supplies all three
    # files (cloud/tls.py, docs/operations.md).
    mqtt_tls_port: int = 8883
    mqtt_tls_host: str = "0.0.0.0"
    mqtt_tls_names: str = "localhost,127.0.0.1"
    mqtt_tls_certfile: Path | None = None
    mqtt_tls_keyfile: Path | None = None
    mqtt_tls_cafile: Path | None = None
    # Several workers split the ingest with $share/<group>/... The group name is a secret
    # shared by the workers, like a password: Mosquitto 2.0 grants any client's $share
    # SUBSCRIBE (its acl_file does not check subscriptions), so a watch that knows the
    # name joins the group and takes a share of every tenant's messages, which the ACL
    # then drops on delivery (docs/security.md). Hence at least SHARED_GROUP_MIN_CHARS.
    mqtt_shared_group: str | None = None
    # Bulk messages (loc/status/presence) stored per transaction at most, and held in
    # memory at most before the bulk session stops reading (cloud/mqtt/bridge.py).
    ingest_batch_max: int = 500
    ingest_bulk_max: int = 5000
    # A batch short of ingest_batch_max waits this long for more (alerts never wait).
    ingest_linger_s: float = 0.05
    # Location history older than this is deleted (0 keeps it for ever); cases are kept.
    location_retention_days: int = 30
    location_retention_every_s: float = 3600.0

    # false: alerts and command acks are subscribed on the bulk session too, where they
    # queue behind its backlog in the broker (only to measure what the alert session buys).
    mqtt_alert_connection: bool = True

    def tls_hosts(self) -> list[str]:
        """The names and addresses the broker's generated certificate is valid for."""
        return [h.strip() for h in self.mqtt_tls_names.split(",") if h.strip()]

    def mqtt_service_accounts(self) -> tuple[str, ...]:
        """The broker accounts this cloud process connects with (same password): the bulk
        session, and the alert session ("<username>-alerts") on which alerts and command
        acks arrive, so an SOS never queues in the broker behind a backlog of location
        reports (cloud/mqtt/bridge.py)."""
        return (self.mqtt_username, alert_username(self.mqtt_username))
    # Live console events across API replicas: "auto" relays over PostgreSQL LISTEN/NOTIFY
    # when the database is PostgreSQL (one SQLite file means one process anyway).
    live_relay: Literal["auto", "postgres", "off"] = "auto"

    http_host: str = "127.0.0.1"
    http_port: int = 8000
    # Exposure (cloud/api/exposure.py, docs/security.md). Reverse proxies whose
    # X-Forwarded-For is believed (addresses or CIDRs, comma-separated): none by default.
    trusted_proxies: str = ""
    metrics_token: str | None = None  # set: /metrics needs "Authorization: Bearer <token>"
    metrics_loopback: bool = True  # no token: /metrics answers only loopback clients no proxy relayed
    api_docs: Literal["off", "admin", "public"] = "admin"  # /docs, /redoc, /openapi.json

    @field_validator("trusted_proxies", "outbound_allow_networks")
    @classmethod
    def _networks(cls, value: str) -> str:
        for part in filter(None, (x.strip() for x in value.split(","))):
            ipaddress.ip_network(part, strict=False)  # a typo fails at start, not on every request
        return value
    secure_cookies: bool = False  # set True behind TLS
    # The console's map tiles (callcenter/pages.py), e.g. your own tile server
    # "https://tiles.example.org/{z}/{x}/{y}.png"; none: the points on a plain background.
    map_tile_url: str | None = None
    map_tile_attribution: str = ""
    # Operator sessions (docs/operations.md): the absolute lifetime, and the idle one
    # (no request and no open console for that long).
    session_hours: int = 12
    session_idle_minutes: int = 120
    # Login throttling (cloud/domain/throttle.py): failures free of delay per
    # (account, address) and per address, then a wait of base x 2^n up to the max.
    login_account_free_failures: int = 3
    login_address_free_failures: int = 20
    login_backoff_base_s: float = 1.0
    login_backoff_max_s: float = 900.0

    late_alert_s: int = 300  # an alert whose ts is older than this on receipt is flagged late
    # Alarm integrity (cloud/domain/ingest/, dedupe.py): the device's time is believed
    # within [now - alert_max_age_s, now + alert_future_s], else "watch clock wrong";
    # an identical alert is a retransmission within alert_dedupe_window_s of the first.
    alert_max_age_s: int = 30 * 86400
    alert_future_s: int = 300
    alert_dedupe_window_s: int = 7 * 86400
    # Presses beyond press_budget within press_window_s, while a case is open, are
    # stored and acked but coalesced (one case event, live updates at most every 10 s).
    press_budget: int = 10
    press_window_s: int = 60
    # Per-device limits on the other up kinds (cloud/domain/ingest/limits.py): a token
    # bucket per watch and kind, tokens a minute and a burst (the watch's outbox holds
    # 100 messages, all sent at once after an outage). Over it a message is acked and
    # dropped, counted in pers_ingest_rate_limited_total{kind}. 0: no limit for a kind.
    device_loc_per_min: float = 12.0  # a report every 5 s: the fastest tracking period
    device_status_per_min: float = 4.0
    device_presence_per_min: float = 4.0
    device_ack_per_min: float = 60.0
    device_burst: int = 120
    # /healthz fails when the oldest message waiting for its commit is older than this.
    ingest_stuck_after_s: float = 30.0
    log_json: bool = True
    # Diagnosis only (cloud/memprobe.py): a file to append a memory sample to every
    # memprobe_s seconds, and tracemalloc's frames (0: off) for the growing call sites.
    memprobe: str | None = None
    memprobe_s: float = 5.0
    tracemalloc: int = 0

    @field_validator("mqtt_shared_group")
    @classmethod
    def _group_is_a_secret(cls, value: str | None) -> str | None:
        if not value:
            return None  # PERS_MQTT_SHARED_GROUP= (set, empty): no group, one worker
        if not SHARED_GROUP_RE.fullmatch(value):
            raise ValueError(
                f"PERS_MQTT_SHARED_GROUP must be a secret of at least {SHARED_GROUP_MIN_CHARS} characters of "
                "A-Z a-z 0-9 _ - (a device that knows the group takes a share of the cloud's messages); "
                "generate one with: python3 -c 'import secrets; print(secrets.token_urlsafe(24))'")
        return value

    @field_validator("tracemalloc", mode="before")
    @classmethod
    def _empty_is_off(cls, value):
        return value or 0  # PERS_TRACEMALLOC= (set, empty) has always meant off

    # --- routing and escalation (docs/operations.md) ---
    operator_present_s: int = 120  # an operator seen within this many seconds is "present"
    escalate_unclaimed_s: int = 30  # unclaimed this long: next centre in the contract + supervisors
    remind_idle_s: int = 120  # claimed with no operator action this long: remind
    cascade_after_s: int = 300  # open, idle this long after the reminder: notify the next contact
    tick_s: float = 1.0  # period of the background ticker (escalation, presence, command expiry)
    sla_targets: str = "10:80,40:98.5"  # seconds:percent accepted within, per the telecare standards

    # --- devices ---
    heartbeat_s: int = 3600  # default config heartbeat
    heartbeat_tolerance: float = 2.5  # silent for heartbeat_s x this: suspect
    offline_grace_s: int = 300  # suspect for this long (no message at all): offline
    offline_opens_case: bool = True  # an offline device opens a low-priority "offline" case
    command_ttl_s: int = 600  # a command not acked within this is marked expired
    geofence_track_s: int = Field(default=60, ge=5, le=3600)  # position period asked while a zone's schedule runs
    reminder_check_s: float = 30.0  # how often the cloud looks for missed medication doses
    reminder_grace_s: int = 120  # after a dose's window, for the watch's word in flight
    welfare_check_s: float = 10.0  # how often the cloud looks for missed check-ins, inactivity, watches not worn
    geofence_track_check_s: float = 30.0  # how often the cloud checks which watches it must ask for positions
    callcenter_number: str | None = None  # default call-centre number in device configs
    # How a phone number written without its country code is read (ISO 3166 code, e.g. "FR");
    # None: such a number is refused, since nobody can tell its country.
    phone_region: str | None = None

    # --- the watch gateway (docs/gateway.md): off-the-shelf watches over TCP ---
    # None: off. Its protocols (3G/SeTracker, IW) carry no password, the IMEI is the
    # only identity: open it only behind a private APN or VPN (docs/security.md).
    gateway_port: int | None = None
    gateway_host: str = "127.0.0.1"  # "0.0.0.0" to take the watches' connections from the network
    # A frame must be complete this long after its first byte (and the first frame this
    # long after the connection), else the connection is dropped (slow-loris).
    gateway_frame_timeout_s: float = 10.0
    gateway_idle_timeout_s: float = 900.0  # no frame at all: the watches send a heartbeat every few minutes
    gateway_max_frame_bytes: int = 16384
    gateway_max_connections: int = 20000

    # --- location ---
    cells_csv: Path | None = None  # OpenCelliD-format CSV; default: the sample in cloud/data
    geocoder: Literal["none", "nominatim"] = "none"
    geocoder_url: str | None = None  # e.g. a self-hosted Nominatim "nominatim.example.org"
    geocoder_user_agent: str = "openpers"

    # --- notifications to contacts ---
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_from: str = "openpers@localhost"
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    sms_gateway_url: str | None = None  # POST {"to","text"} as JSON
    sms_gateway_token: str | None = None  # sent as "Authorization: Bearer ..."
    webhook_url: str | None = None  # default webhook when the tenant sets none
    notify_timeout_s: float = 5.0

    # --- forwarding to alarm centres' receivers over SIA DC-09 (docs/forwarding.md) ---
    forward_period_s: float = 0.5  # how often the outbox is looked at
    forward_timeout_s: float = 5.0  # to wait for a receiver's ACK
    forward_tries: int = 3  # exchanges with the primary receiver before the backup (and the supervisors' alert)
    forward_retry_base_s: float = 2.0  # backoff between tries, doubling
    forward_retry_max_s: float = 60.0  # the backoff's cap: an undelivered event is retried for ever at this pace

    # --- outbound calls to configured URLs (cloud/domain/outbound.py, docs/security.md) ---
    # Off in production: plain http, and loopback targets (for tests with a local listener).
    outbound_allow_http: bool = False
    outbound_allow_loopback: bool = False
    # Comma-separated. Hosts: when set, the only hosts webhooks and the gateway may name
    # ("hooks.example.org,*.sms.example.com"). Networks: private ranges the operator trusts
    # for an in-house gateway ("10.20.0.0/24"); every other private address stays refused.
    outbound_allow_hosts: str = ""
    outbound_allow_networks: str = ""
    outbound_max_response_bytes: int = 65536

    def sla_target_list(self) -> list[tuple[float, float]]:
        out = []
        for part in self.sla_targets.split(","):
            secs, pct = part.split(":")
            out.append((float(secs), float(pct)))
        return out

    def device_limits_per_min(self) -> dict[str, float]:
        return {"loc": self.device_loc_per_min, "status": self.device_status_per_min,
                "presence": self.device_presence_per_min, "ack": self.device_ack_per_min}

    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'pers.db').resolve()}"


@lru_cache
def get_settings() -> Settings:
    return Settings()


def alert_username(username: str) -> str:
    return f"{username}-alerts"
