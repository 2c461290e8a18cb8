"""The one place where the service is put together: settings in, typed services out.

Every other module receives what it needs from here and imports none of its
peers to build it. The arrows (tests/test_layering.py):

    cloud.runtime -> cloud.wiring -> cloud.api, cloud.mqtt, callcenter, cloud.domain, cloud.store
    callcenter -> cloud.api (its session cookie); cloud.api -> cloud.domain, cloud.store

so the API knows neither MQTT nor the console, and only the runtime (through it
the CLI), the tests and the benches import the wiring. Every port is given when
the object that needs it is made: nothing is plugged in after start.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker

from callcenter.pages import mount_console
from cloud.api.app import create_app
from cloud.api.live import LiveHub
from cloud.domain.accounts import AccountService, BrokerAuth
from cloud.domain.admin import AdminService
from cloud.domain.cases import CaseService
from cloud.domain.cells import CellDB
from cloud.domain.clock import SystemClock
from cloud.domain.forwarding.forwarder import BackgroundForwarder, Forwarder, ForwardPolicy
from cloud.domain.geo import make_geocoder, set_geocoder
from cloud.domain.ingest import Ingestor
from cloud.domain.ingest.limits import DeviceLimits
from cloud.domain.notify import Notifier, channels_from_settings
from cloud.domain.outbound import OutboundHttp, outbound_from_settings
from cloud.domain.ports import CommandSender, EventSink
from cloud.domain.sessions import SessionPolicy
from cloud.domain.throttle import ThrottlePolicy
from cloud.domain.ticker import BackgroundTicker, Ticker
from cloud.gateway.server import WatchGateway, gateway_from_settings
from cloud.mqtt.bridge import MqttBridge
from cloud.settings import Settings
from cloud.store.db import make_engine, make_sessionmaker

if TYPE_CHECKING:  # psycopg is imported only when the relay is used
    from cloud.live_relay import PgLiveRelay


class Clock(Protocol):
    def now(self): ...

    def unix(self) -> int: ...


class Outbound:
    """The one way out to the watches (commands, and configs for the admin), shared by
    the ingestor, the cases and the admin. It is given its transport when it is made,
    for good: the MQTT bridge, a recorder passed to ``build_services(sender=...)``, or
    nothing (no MQTT: commands go nowhere, as a tool that only reads the database wants)."""

    def __init__(self, transport: CommandSender | None = None):
        self._transport = transport

    @property
    def transport(self) -> CommandSender | None:
        """What carries the commands (read only: the wiring test checks it is the bridge)."""
        return self._transport

    def send_command(self, device_id: str, command: dict) -> None:
        if self._transport is not None:
            self._transport.send_command(device_id, command)

    def publish_config(self, device_id: str, config: dict) -> None:
        publish = getattr(self._transport, "publish_config", None)  # a recorder may only send commands
        if publish is not None:
            publish(device_id, config)


class GatewayRouter:
    """Commands and configs to the watch gateway for the watches that talk through it
    (docs/gateway.md), to MQTT for the others."""

    def __init__(self, gateway: WatchGateway, mqtt: CommandSender | None):
        self.gateway, self.mqtt = gateway, mqtt

    def send_command(self, device_id: str, command: dict) -> None:
        if self.gateway.handles(device_id):
            self.gateway.send_command(device_id, command)
        elif self.mqtt is not None:
            self.mqtt.send_command(device_id, command)

    def publish_config(self, device_id: str, config: dict) -> None:
        if self.gateway.handles(device_id):
            self.gateway.publish_config(device_id, config)
        else:
            publish = getattr(self.mqtt, "publish_config", None)
            if publish is not None:
                publish(device_id, config)


class CallBrokerAuth:
    """A BrokerAuth port that calls a function, or does nothing without one: the
    default when the caller manages no broker (tests, one-off tools). The runtime,
    which knows the broker, passes its own port to ``build_services`` instead; a test
    that counts the syncs passes ``CallBrokerAuth(its_counter)``."""

    def __init__(self, call: Callable[[], object] | None = None):
        self._call = call

    def sync(self) -> None:
        if self._call is not None:
            self._call()


@dataclass
class Services:
    """Everything one cloud process runs. The API reads it through its own protocol
    (cloud/api/app.py: ApiServices), so it needs no import of this module."""
    settings: Settings
    sm: sessionmaker[Session]
    clock: Clock
    live: LiveHub
    sender: Outbound
    bridge: MqttBridge | None
    ingestor: Ingestor
    cases: CaseService
    accounts: AccountService
    admin: AdminService
    notifier: Notifier
    ticker: Ticker
    background: BackgroundTicker | None  # timers run by themselves only in a real service
    forwarder: Forwarder  # the outbox to the alarm centres' receivers (SIA DC-09)
    forwarding: BackgroundForwarder | None  # runs it, in a real service
    broker_auth: BrokerAuth
    relay: PgLiveRelay | None  # live events to and from the other API replicas
    gateway: WatchGateway | None = None  # off-the-shelf watches over TCP, when PERS_GATEWAY_PORT is set

    def start(self) -> None:
        """The background parts, in the order the app's lifespan has always used:
        the relay first, so that no event published by the first messages is missed."""
        if self.relay:
            self.relay.start()
        if self.bridge:
            self.bridge.start()
        if self.gateway:
            self.gateway.start()
        if self.background:
            self.background.start()
        if self.forwarding:
            self.forwarding.start()

    def stop(self) -> None:
        if self.forwarding:
            self.forwarding.stop()
        if self.background:
            self.background.stop()
        if self.gateway:
            self.gateway.stop()
        if self.bridge:
            self.bridge.stop()
        if self.relay:
            self.relay.stop()


def open_store(settings: Settings) -> sessionmaker[Session]:
    """The database's sessionmaker, made before the services when a port built by the
    caller needs it too (the runtime's broker port reads the device passwords)."""
    return make_sessionmaker(make_engine(settings.db_url))


def build_services(settings: Settings, *, clock: Clock | None = None, with_mqtt: bool = True,
                   sm: sessionmaker[Session] | None = None, sender: CommandSender | None = None,
                   broker_auth: BrokerAuth | None = None, http_out: OutboundHttp | None = None) -> Services:
    """``with_mqtt=False``: no bridge and no background timers (tests tick a FakeClock);
    commands then go to ``sender`` if given, else nowhere. ``broker_auth``: how the
    admin's provisioning and rotation reach the broker (the runtime's port); without
    one they only change the database. ``http_out``: how webhooks and the SMS gateway are
    called (a test gives its own resolver and connect function); default from settings."""
    sm = sm or open_store(settings)
    clock = clock or SystemClock()
    live = LiveHub()
    # What the domain publishes to: this replica's consoles, and the others' when there are others.
    events: EventSink = live
    relay = None
    on_postgres = settings.db_url.startswith("postgresql")
    if settings.live_relay == "postgres" or (settings.live_relay == "auto" and on_postgres):
        from cloud.live_relay import PgLiveRelay
        events = relay = PgLiveRelay(live, settings.db_url)

    # The bridge and the ingestor need each other: the bridge hands messages to the
    # ingestor, and the ingestor's acks leave on the bridge's alert session (on purpose:
    # an ack must not queue behind the bulk session). The bridge needs nothing of the
    # domain to exist, so it is made first, the ingestor is given it (through Outbound)
    # as its way out, and the bridge receives its handler through attach() before it
    # starts; start() refuses without one. Splitting the publishing client out of the
    # bridge instead would split the one alert session in two owners.
    bridge = None
    if with_mqtt:
        bridge = MqttBridge(host=settings.mqtt_host, port=settings.mqtt_port,
                            username=settings.mqtt_username, password=settings.mqtt_password,
                            client_id=settings.mqtt_client_id, shared_group=settings.mqtt_shared_group,
                            alert_username=settings.mqtt_service_accounts()[1],
                            batch_max=settings.ingest_batch_max, bulk_max=settings.ingest_bulk_max,
                            linger_s=settings.ingest_linger_s, alerts_apart=settings.mqtt_alert_connection)
    transport = sender if sender is not None else bridge
    # The watch gateway, like the bridge, is made before the ingestor that stores what it
    # receives and is given it through attach(); commands for its watches go through it.
    gateway = gateway_from_settings(settings, sm, clock) if with_mqtt else None
    outbound = Outbound(GatewayRouter(gateway, transport) if gateway is not None else transport)
    set_geocoder(make_geocoder(settings))
    cells = CellDB.load(settings.cells_csv)
    ingestor = Ingestor(sm, clock, outbound, events, late_after_s=settings.late_alert_s, cells=cells,
                        present_window_s=settings.operator_present_s, press_budget=settings.press_budget,
                        press_window_s=settings.press_window_s, future_after_s=settings.alert_future_s,
                        dedupe_window_s=settings.alert_dedupe_window_s, max_alert_age_s=settings.alert_max_age_s,
                        limits=DeviceLimits(settings.device_limits_per_min(), settings.device_burst))
    if bridge is not None:
        bridge.attach(ingestor)
    if gateway is not None:
        gateway.attach(ingestor, submit=bridge.submit if bridge is not None else None)
    broker_auth = broker_auth if broker_auth is not None else CallBrokerAuth()
    # One notifier for the cascade, the operators' "Notify" and geofence alerts: all really send.
    http_out = http_out or outbound_from_settings(settings)
    notifier = Notifier(sm, clock, channels_from_settings(settings, http_out), events)
    ingestor.notifier = notifier
    ticker = Ticker(sm, clock, events, settings, notifier, sender=outbound)
    # The receivers' hosts pass the same outbound guard as the webhooks.
    forwarder = Forwarder(sm, clock, events, http_out, ForwardPolicy.from_settings(settings))
    return Services(settings=settings, sm=sm, clock=clock, live=live, sender=outbound, bridge=bridge,
                    ingestor=ingestor,
                    cases=CaseService(sm, clock, outbound, events, notifier),
                    accounts=AccountService(sm, clock, sessions=session_policy(settings),
                                            throttle=throttle_policy(settings), events=events),
                    admin=AdminService(sm, clock, broker=broker_auth, publisher=outbound,
                                       default_heartbeat_s=settings.heartbeat_s,
                                       default_number=settings.callcenter_number,
                                       phone_region=settings.phone_region, outbound=http_out,
                                       events=events),
                    notifier=notifier, ticker=ticker,
                    background=BackgroundTicker(ticker, settings.tick_s) if with_mqtt else None,
                    forwarder=forwarder,
                    forwarding=BackgroundForwarder(forwarder, settings.forward_period_s) if with_mqtt else None,
                    broker_auth=broker_auth, relay=relay, gateway=gateway)


def session_policy(settings: Settings) -> SessionPolicy:
    return SessionPolicy(idle_s=settings.session_idle_minutes * 60, absolute_s=settings.session_hours * 3600)


def throttle_policy(settings: Settings) -> ThrottlePolicy:
    return ThrottlePolicy(account_free=settings.login_account_free_failures,
                          address_free=settings.login_address_free_failures,
                          base_s=settings.login_backoff_base_s, max_s=settings.login_backoff_max_s)


def build_app(settings: Settings, services: Services | None = None, *, with_mqtt: bool = True) -> FastAPI:
    """The cloud's HTTP face: the API, and the operators' console served beside it
    (the console is mounted here, so that the API never imports it)."""
    services = services or build_services(settings, with_mqtt=with_mqtt)
    app = create_app(settings, services=services)
    mount_console(app, tile_url=settings.map_tile_url, tile_attribution=settings.map_tile_attribution)
    return app
