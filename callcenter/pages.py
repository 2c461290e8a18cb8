"""The operator console: static pages served by the cloud app.

The pages talk to the cloud only through its public API (/api/...) and live
feed (/api/ws), like any other client."""
from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import xstatic.pkg.leaflet as leaflet
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from cloud.api.deps import SESSION_COOKIE

HERE = Path(__file__).resolve().parent
NO_CACHE = {"Cache-Control": "no-store"}


def security_headers(tile_url: str | None) -> dict[str, str]:
    """The map's tile server is the one origin beyond our own that pages may load images from."""
    tile_origin = ""
    if tile_url:
        u = urlparse(tile_url.replace("{s}", "a"))
        tile_origin = f" {u.scheme}://{u.netloc.split('{')[0]}" if u.scheme else ""
        if "{s}" in tile_url:
            tile_origin = f" {u.scheme}://*.{u.netloc.split('.', 1)[-1]}"
    return {"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
            "Content-Security-Policy": f"default-src 'self'; img-src 'self' data:{tile_origin}; "
                                       "connect-src 'self'; frame-ancestors 'none'; object-src 'none'"}


def _page(name: str, headers: dict[str, str]) -> FileResponse:
    return FileResponse(HERE / "templates" / name, headers={**NO_CACHE, **headers})


def _role_page(request: Request, name: str, roles: tuple[str, ...], headers: dict[str, str]):
    """Pages for supervisors and admins are refused on the server, not only hidden:
    no session goes to the login page, a weaker role gets a 403 page (the APIs the
    page uses check the role again)."""
    accounts = request.app.state.services.accounts
    found = accounts.session_operator(request.cookies.get(SESSION_COOKIE))
    if found is None:
        return RedirectResponse("/login", status_code=303)
    op = found[0]
    accounts.touch(op.id)
    if op.role not in roles or not op.active:
        need = " or ".join(roles)
        return HTMLResponse(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>OpenPERS - not allowed</title>"
            "<link rel=\"stylesheet\" href=\"/static/console.css\"></head><body class=\"login\">"
            f"<main class=\"login-box\" id=\"refused\"><h1>Not allowed</h1><p>This page needs the role {need}.</p>"
            "<p><a href=\"/\">Back to the queue</a></p></main></body></html>",
            status_code=403, headers={**NO_CACHE, **headers})
    return _page(name, headers)


def mount_console(app: FastAPI, *, tile_url: str | None = None, tile_attribution: str = "") -> None:
    """Serve the console's pages on ``app``. Map tiles come from a configurable URL
    (PERS_MAP_TILE_URL, e.g. "https://tiles.example.org/{z}/{x}/{y}.png", and
    PERS_MAP_TILE_ATTRIBUTION); without it the map still shows the points on a plain
    background. The caller (cloud/wiring.py) passes them from the settings."""
    tile_url = tile_url or None
    headers = security_headers(tile_url)
    app.mount("/static/leaflet", StaticFiles(directory=leaflet.BASE_DIR), name="leaflet")
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.get("/", include_in_schema=False)
    def queue_page():
        return _page("queue.html", headers)

    @app.get("/history", include_in_schema=False)
    def history_page():
        return _page("history.html", headers)

    @app.get("/account", include_in_schema=False)
    def account_page():
        return _page("account.html", headers)

    @app.get("/login", include_in_schema=False)
    def login_page():
        return _page("login.html", headers)

    @app.get("/supervisor", include_in_schema=False)
    def supervisor_page(request: Request):
        return _role_page(request, "supervisor.html", ("supervisor", "admin"), headers)

    @app.get("/admin", include_in_schema=False)
    def admin_page(request: Request):
        return _role_page(request, "admin.html", ("admin",), headers)

    @app.get("/console", include_in_schema=False)
    def console_alias():
        return RedirectResponse("/")

    @app.get("/api/console/config", tags=["console"])
    def console_config():
        return JSONResponse({"tile_url": tile_url, "tile_attribution": tile_attribution})
