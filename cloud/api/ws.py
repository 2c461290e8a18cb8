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

log = logging.getLogger("pers.ws")
router = APIRouter()
TOUCH_EVERY_S = 15  # operator presence from an open console (the keep-alive runs every 20 s at most)


@router.websocket("/api/ws")
async def live_feed(ws: WebSocket):
    svc = ws.app.state.services
    origin = ws.headers.get("origin")
    if origin and urlparse(origin).netloc != ws.headers.get("host"):
        await ws.close(code=4403)  # cross-site WebSocket hijacking guard
        return
    found = await run_in_threadpool(svc.accounts.session_operator, ws.cookies.get(SESSION_COOKIE))
    if found is None:
        await ws.close(code=4401)
        return
    op = found[0]
    await ws.accept()
    await run_in_threadpool(svc.accounts.touch, op.id)  # presence; throttled
    touched = time.monotonic()
    queue = svc.live.subscribe(op.tenant_id)
    # Notice a closed socket (or a server shutdown) at once, not at the next event.
    closed = asyncio.create_task(_until_closed(ws))
    try:
        cases = await run_in_threadpool(svc.cases.list_cases, op)
        await ws.send_json({"type": "snapshot", "cases": cases})
        while not closed.done():
            getter = asyncio.create_task(queue.get())
            done, _ = await asyncio.wait({getter, closed}, timeout=20, return_when=asyncio.FIRST_COMPLETED)
            if getter not in done:
                getter.cancel()
                if closed.done():
                    break
                event = {"type": "ping"}
            else:
                event = getter.result()
            if time.monotonic() - touched >= TOUCH_EVERY_S:
                # An open console is a present operator, busy feed or not.
                touched = time.monotonic()
                await run_in_threadpool(svc.accounts.touch, op.id)
            if event.get("type") == "resync":
                cases = await run_in_threadpool(svc.cases.list_cases, op)
                event = {"type": "snapshot", "cases": cases}
            await ws.send_json(event)
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        closed.cancel()
        svc.live.unsubscribe(op.tenant_id, queue)


async def _until_closed(ws: WebSocket) -> None:
    """The console sends nothing; any receive ends only when the socket closes."""
    try:
        while True:
            msg = await ws.receive()
            if msg["type"] == "websocket.disconnect":
                return
    except (WebSocketDisconnect, RuntimeError):
        return
