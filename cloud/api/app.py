"""The FastAPI application: wires the domain to its adapters (MQTT, HTTP, WebSocket)."""
from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session, sessionmaker

from cloud.api import admin, routes, ws
from cloud.api.live import LiveHub
from cloud.domain.accounts import AccountService, LoginLimiter
from cloud.domain.admin import AdminService
from cloud.domain.cases import CaseService
from cloud.domain.cells import CellDB
from cloud.domain.geo import make_geocoder, set_geocoder
from cloud.domain.notify import Notifier, channels_from_settings
from cloud.domain.ticker import BackgroundTicker, Ticker
from cloud.domain.clock import SystemClock
from cloud.domain.ingest import Ingestor
from cloud.mqtt.bridge import MqttBridge
from cloud.settings import Settings
from cloud.store.db import make_engine, make_sessionmaker

log = logging.getLogger("pers.api")


@dataclass
class Services:
    settings: Settings
    sm: sessionmaker[Session]
    clock: object
    live: LiveHub
    bridge: MqttBridge | None
    ingestor: Ingestor
    cases: CaseService
    accounts: AccountService
    # Routing, escalation and notification (defaults keep older constructions working).
    admin: AdminService | None = None
    notifier: Notifier | None = None
    ticker: Ticker | None = None
    background: BackgroundTicker | None = None  # started by the app's lifespan when set
    broker_auth: object | None = None  # late-bound BrokerAuth port; the runtime sets .target
    relay: object | None = None  # live events to and from the other API replicas (cloud/live_relay.py)


class _LateBrokerAuth:
    """The runtime knows the broker; the domain only calls sync()."""
    target = None

    def sync(self):
        if self.target is not None:
            self.target()


def build_services(settings: Settings, *, clock=None, with_mqtt: bool = True) -> Services:
    engine = make_engine(settings.db_url)
    sm = make_sessionmaker(engine)
    clock = clock or SystemClock()
    live = LiveHub()
    # What the domain publishes to: this replica's consoles, and the others' when there are others.
    events, relay = live, None
    on_postgres = settings.db_url.startswith("postgresql")
    if settings.live_relay == "postgres" or (settings.live_relay == "auto" and on_postgres):
        from cloud.live_relay import PgLiveRelay
        events = relay = PgLiveRelay(live, settings.db_url)

    class _LateSender:
        """The bridge needs the ingestor and the ingestor needs a sender: break the cycle."""
        target = None

        def send_command(self, device_id, command):
            if self.target is not None:
                self.target.send_command(device_id, command)

        def publish_config(self, device_id, config):
            publish = getattr(self.target, "publish_config", None)  # a test's sender may only send commands
            if publish is not None:
                publish(device_id, config)

    sender = _LateSender()
    set_geocoder(make_geocoder(settings))
    cells = CellDB.load(settings.cells_csv)
    ingestor = Ingestor(sm, clock, sender, events, late_after_s=settings.late_alert_s, cells=cells,
                        present_window_s=settings.operator_present_s, press_budget=settings.press_budget,
                        press_window_s=settings.press_window_s, future_after_s=settings.alert_future_s,
                        dedupe_window_s=settings.alert_dedupe_window_s, max_alert_age_s=settings.alert_max_age_s)
    bridge = None
    if with_mqtt:
        bridge = MqttBridge(ingestor, host=settings.mqtt_host, port=settings.mqtt_port,
                            username=settings.mqtt_username, password=settings.mqtt_password,
                            client_id=settings.mqtt_client_id, shared_group=settings.mqtt_shared_group,
                            alert_username=settings.mqtt_service_accounts()[1],
                            batch_max=settings.ingest_batch_max, bulk_max=settings.ingest_bulk_max,
                            linger_s=settings.ingest_linger_s, alerts_apart=settings.mqtt_alert_connection)
        sender.target = bridge
    notifier = Notifier(sm, clock, channels_from_settings(settings), events)
    ticker = Ticker(sm, clock, events, settings, notifier)
    broker_auth = _LateBrokerAuth()
    return Services(settings=settings, sm=sm, clock=clock, live=live, bridge=bridge, ingestor=ingestor,
                    cases=CaseService(sm, clock, sender, events),
                    accounts=AccountService(sm, clock, LoginLimiter(settings.login_max_failures,
                                                                    settings.login_window_s),
                                            settings.session_hours),
                    admin=AdminService(sm, clock, broker=broker_auth, publisher=sender,
                                       default_heartbeat_s=settings.heartbeat_s,
                                       default_number=settings.callcenter_number),
                    notifier=notifier, ticker=ticker,
                    # Timers run by themselves only in a real service; tests tick a FakeClock.
                    background=BackgroundTicker(ticker, settings.tick_s) if with_mqtt else None,
                    broker_auth=broker_auth, relay=relay)


def create_app(settings: Settings, *, services: Services | None = None, with_mqtt: bool = True) -> FastAPI:
    svc = services or build_services(settings, with_mqtt=with_mqtt)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        svc.live.bind(asyncio.get_running_loop())
        if svc.relay:
            svc.relay.start()
        if svc.bridge:
            svc.bridge.start()
        if svc.background:
            svc.background.start()
        yield
        if svc.background:
            svc.background.stop()
        if svc.bridge:
            svc.bridge.stop()
        if svc.relay:
            svc.relay.stop()

    app = FastAPI(title="OpenPERS cloud", version="0.1.0", lifespan=lifespan,
                  description="Alerts from PERS watches, cases for call-centre operators.")
    app.state.services = svc

    @app.exception_handler(RequestValidationError)
    async def _log_bad_request(request: Request, exc: RequestValidationError):
        log.warning("rejected API request", extra={"path": request.url.path, "reason": "invalid_request",
                                                   "detail": str(exc.errors())[:300]})
        # FastAPI's own handler fails (500) on a non-UTF-8 body: encode bytes safely.
        errors = jsonable_encoder(exc.errors(), custom_encoder={bytes: lambda b: b.decode("utf-8", "replace")})
        return JSONResponse(status_code=422, content={"detail": errors})

    app.include_router(routes.router)
    app.include_router(ws.router)
    app.include_router(admin.router)
    from callcenter.pages import mount_console
    mount_console(app)
    return app
