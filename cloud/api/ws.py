"""WebSocket live feed, scoped to the operator's tenant.

On every (re)connection the client first gets a snapshot of the open cases, so
a console that lost its connection resyncs by simply reconnecting."""
from __future__ import annotations

import asyncio
import logging
from urllib.parse import urlparse

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from cloud.api.deps import SESSION_COOKIE

log = logging.getLogger("pers.ws")
router = APIRouter()


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
    queue = svc.live.subscribe(op.tenant_id)
    try:
        cases = await run_in_threadpool(svc.cases.list_cases, op)
        await ws.send_json({"type": "snapshot", "cases": cases})
        while True:
            try:
                event = await asyncio.wait_for(queue.get(), timeout=20)
            except asyncio.TimeoutError:
                event = {"type": "ping"}
            if event.get("type") == "resync":
                cases = await run_in_threadpool(svc.cases.list_cases, op)
                event = {"type": "snapshot", "cases": cases}
            await ws.send_json(event)
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        svc.live.unsubscribe(op.tenant_id, queue)
