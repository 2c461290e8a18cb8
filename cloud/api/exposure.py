"""What the server shows to whom, beyond the API's own checks: /metrics, the API
documentation, and the caching of API answers.

- ``/metrics`` needs ``Authorization: Bearer <PERS_METRICS_TOKEN>`` when a token is set;
  without one (the default) it answers only a loopback client that no proxy relayed
  (``PERS_METRICS_LOOPBACK=false`` closes that too). Everyone else gets 404.
- ``/docs``, ``/redoc`` and ``/openapi.json``: ``PERS_API_DOCS`` = ``admin`` (the default:
  a logged-in tenant admin), ``public`` (``pers demo``) or ``off``; refused is 404.
- Every ``/api`` answer carries ``Cache-Control: no-store``: they hold personal data
  (wearers, medical notes, positions), which no browser or proxy cache may keep."""
from __future__ import annotations

import hmac
import ipaddress

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cloud.api.deps import SESSION_COOKIE, is_trusted_proxy, services

RELAY_HEADERS = ("x-forwarded-for", "forwarded", "x-real-ip", "x-forwarded-host")
docs_router = APIRouter(include_in_schema=False)


def metrics_allowed(request: Request) -> bool:
    """Raises 401 for a wrong token; False when /metrics must look absent."""
    settings = services(request).settings
    if settings.metrics_token:
        sent = request.headers.get("authorization", "")
        if not hmac.compare_digest(sent.encode(), f"Bearer {settings.metrics_token}".encode()):
            raise HTTPException(status_code=401, detail="metrics need the bearer token",
                                headers={"WWW-Authenticate": "Bearer"})
        return True
    if not settings.metrics_loopback:
        return False
    # A reverse proxy on the same host connects from loopback too: a request it relayed
    # (a trusted proxy, or any forwarding header) is not a local scraper.
    peer = request.client.host if request.client else ""
    relayed = is_trusted_proxy(request, peer) or any(h in request.headers for h in RELAY_HEADERS)
    return _is_loopback(peer) and not relayed


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _docs_allowed(request: Request) -> None:
    svc = services(request)
    mode = svc.settings.api_docs
    if mode == "public":
        return
    if mode == "admin":
        found = svc.accounts.session_operator(request.cookies.get(SESSION_COOKIE))
        if found is not None and found[0].role == "admin" and getattr(found[0], "active", True):
            return
    raise HTTPException(status_code=404, detail="Not Found")


@docs_router.get("/openapi.json")
def openapi(request: Request) -> JSONResponse:
    _docs_allowed(request)
    return JSONResponse(request.app.openapi())


@docs_router.get("/docs")
def swagger(request: Request) -> HTMLResponse:
    _docs_allowed(request)
    return get_swagger_ui_html(openapi_url="/openapi.json", title="OpenPERS API")


@docs_router.get("/redoc")
def redoc(request: Request) -> HTMLResponse:
    _docs_allowed(request)
    return get_redoc_html(openapi_url="/openapi.json", title="OpenPERS API")


class NoStoreApi:
    """``Cache-Control: no-store`` on every HTTP answer under /api (plain ASGI: no
    buffering of the body, nothing for the WebSocket)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api"):
            await self.app(scope, receive, send)
            return

        async def send_no_store(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"cache-control"]
                message = {**message, "headers": [*headers, (b"cache-control", b"no-store")]}
            await send(message)

        await self.app(scope, receive, send_no_store)


def install_exposure(app: FastAPI) -> None:
    app.add_middleware(NoStoreApi)
    app.include_router(docs_router)
