"""The FastAPI application: the HTTP and WebSocket adapter over the domain's services."""
from __future__ import annotations

import asyncio
import threading
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Protocol

from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker

from cloud.api import admin, history, routes, wearerfile, ws
from cloud.api.errors import install_error_handlers
from cloud.api.exposure import install_exposure
from cloud.api.live import LiveHub
from cloud.domain.accounts import AccountService
from cloud.domain.admin import AdminService
from cloud.domain.cases import CaseService
from cloud.settings import Settings


class Clock(Protocol):
    def now(self) -> datetime: ...


class IngestHealth(Protocol):
    """What /healthz asks of the ingest edge (the MQTT bridge, which the API does not import)."""
    connected: threading.Event

    def oldest_waiting_s(self) -> float: ...


class ApiServices(Protocol):
    """What the API reads from the services it is given (cloud/wiring.py builds them);
    a protocol, so that the API imports neither the wiring nor the MQTT edge. Read-only
    properties: the API never replaces a service, and a dataclass field satisfies them."""
    @property
    def settings(self) -> Settings: ...
    @property
    def sm(self) -> sessionmaker[Session]: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def live(self) -> LiveHub: ...
    @property
    def accounts(self) -> AccountService: ...
    @property
    def cases(self) -> CaseService: ...
    @property
    def admin(self) -> AdminService: ...
    @property
    def bridge(self) -> IngestHealth | None: ...

    def start(self) -> None:
        """Start the background parts (MQTT, timers, live relay) once the app serves."""

    def stop(self) -> None: ...


def create_app(settings: Settings, *, services: ApiServices) -> FastAPI:
    """The API over the given services, nothing else: the wiring mounts the console
    beside it and decides what runs in the background."""
    svc = services

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        svc.live.bind(asyncio.get_running_loop())
        svc.start()
        yield
        svc.stop()

    app = FastAPI(title="OpenPERS cloud", version="0.1.0", lifespan=lifespan,
                  description="Alerts from PERS watches, cases for call-centre operators.",
                  docs_url=None, redoc_url=None, openapi_url=None)  # served by exposure, to admins

    app.state.services = svc

    install_error_handlers(app)
    install_exposure(app)
    app.include_router(routes.router)
    app.include_router(ws.router)
    app.include_router(admin.router)
    app.include_router(wearerfile.router)
    app.include_router(history.router)
    return app
