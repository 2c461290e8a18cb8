"""The operator console: static pages served by the cloud app.

The pages talk to the cloud only through its public API (/api/...) and live
feed (/api/ws), like any other client."""
from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

HERE = Path(__file__).resolve().parent
NO_CACHE = {"Cache-Control": "no-store"}
SECURITY_HEADERS = {"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff",
                    "Referrer-Policy": "no-referrer",
                    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                                               "connect-src 'self'; frame-ancestors 'none'"}


def mount_console(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.get("/", include_in_schema=False)
    def queue_page():
        return FileResponse(HERE / "templates" / "queue.html", headers={**NO_CACHE, **SECURITY_HEADERS})

    @app.get("/login", include_in_schema=False)
    def login_page():
        return FileResponse(HERE / "templates" / "login.html", headers={**NO_CACHE, **SECURITY_HEADERS})

    @app.get("/console", include_in_schema=False)
    def console_alias():
        return RedirectResponse("/")
