"""WebSocket live feed, scoped to the operator's tenant.

On every (re)connection the client first gets a snapshot of the open cases, so
a console that lost its connection resyncs by simply reconnecting."""
from __future__ import annotations

import asyncio
import logging
import time
from urllib.parse import urlparse

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from cloud.api.deps import SESSION_COOKIE
from cloud.domain.sessions import SESSIONS_REVOKED

log = logging.getLogger("pers.ws")
router = APIRouter()
TOUCH_EVERY_S = 15  # operator presence from an open console (the keep-alive runs every 20 s at most)
PING_EVERY_S = 20  # a keep-alive when nothing else was sent for this long
# The session behind an open feed is re-checked this often (revocation also signals it
# at once): an expired or revoked session closes the feed within this time at worst.
SESSION_CHECK_S = 3.0


@router.websocket("/api/ws")
async def live_feed(ws: WebSocket):
    svc = ws.app.state.services
    origin = ws.headers.get("origin")
    if origin and urlparse(origin).netloc != ws.headers.get("host"):
        await ws.close(code=4403)  # cross-site WebSocket hijacking guard
        return
    token = ws.cookies.get(SESSION_COOKIE)
    found = await run_in_threadpool(svc.accounts.session_operator, token)
    if found is None:
        await ws.close(code=4401)
        return
    op = found[0]
    await ws.accept()
    await run_in_threadpool(svc.accounts.touch, op.id)  # presence; throttled
    queue = svc.live.subscribe(op.tenant_id)
    # Notice a closed socket (or a server shutdown) at once, not at the next event.
    closed = asyncio.create_task(_until_closed(ws))
    try:
        cases = await run_in_threadpool(svc.cases.list_cases, op)
        await ws.send_json({"type": "snapshot", "cases": cases})
        await _feed(ws, svc, op, token, queue, closed)
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        closed.cancel()
        svc.live.unsubscribe(op.tenant_id, queue)


async def _feed(ws: WebSocket, svc, op, token: str | None, queue: asyncio.Queue, closed: asyncio.Task) -> None:
    """Events until the socket closes or its session ends. The session is re-checked
    every SESSION_CHECK_S, and at once when the operator's sessions are revoked: a
    logout, a deactivation, a role or password change closes the feed (4401, the
    console goes to the login page) within seconds."""
    touched = checked = sent = time.monotonic()
    while not closed.done():
        getter = asyncio.create_task(queue.get())
        done, _ = await asyncio.wait({getter, closed}, timeout=SESSION_CHECK_S, return_when=asyncio.FIRST_COMPLETED)
        event = None
        if getter in done:
            event = getter.result()
        else:
            getter.cancel()
            if closed.done():
                return
        now = time.monotonic()
        revoked = event is not None and event.get("type") == SESSIONS_REVOKED
        if (revoked and event.get("operator_id") == op.id) or now - checked >= SESSION_CHECK_S:
            checked = now
            if await run_in_threadpool(svc.accounts.session_operator, token) is None:
                log.info("live feed closed: session ended", extra={"operator_id": op.id})
                await ws.close(code=4401)
                return
        if event is None or revoked:  # a revocation is for this process, never for the console
            if now - sent < PING_EVERY_S:
                continue
            event = {"type": "ping"}
        if now - touched >= TOUCH_EVERY_S:
            # An open console is a present operator, busy feed or not.
            touched = now
            await run_in_threadpool(svc.accounts.touch, op.id)
        if event.get("type") == "resync":
            cases = await run_in_threadpool(svc.cases.list_cases, op)
            event = {"type": "snapshot", "cases": cases}
        await ws.send_json(event)
        sent = now


async def _until_closed(ws: WebSocket) -> None:
    """The console sends nothing; any receive ends only when the socket closes."""
    try:
        while True:
            msg = await ws.receive()
            if msg["type"] == "websocket.disconnect":
                return
    except (WebSocketDisconnect, RuntimeError):
        return
