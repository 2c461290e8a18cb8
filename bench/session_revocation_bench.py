"""How soon a revoked session's open console closes.

The real HTTP server (uvicorn, the app as `pers serve` builds it, on SQLite in a
temporary directory, no MQTT) on loopback; an operator's live feed open with the
``websockets`` client; an administrator deactivates the operator over HTTP. Timed
from just before the PATCH is sent to the socket's close (code 4401), for
``--runs`` deactivations (reactivated and logged in again in between). The feed
learns of it by the revocation signal on the live hub; the 3 s re-check is the
fallback, so a close slower than that would mean the signal was lost. Writes
bench/results/session_revocation.json.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402
import uvicorn  # noqa: E402
from websockets.exceptions import ConnectionClosed  # noqa: E402
from websockets.sync.client import connect  # noqa: E402

from bench.harness import free_port, write_result  # noqa: E402
from cloud.seed import DEMO_ADMIN, DEMO_OPERATOR, seed_demo  # noqa: E402
from cloud.settings import Settings  # noqa: E402
from cloud.store.migrate import upgrade  # noqa: E402
from cloud.wiring import build_app, build_services  # noqa: E402


def login(url: str, who: tuple[str, str]) -> httpx.Client:
    c = httpx.Client(base_url=url, timeout=10)
    r = c.post("/api/auth/login", json={"username": who[0], "password": who[1]})
    r.raise_for_status()
    c.headers["X-CSRF-Token"] = r.json()["csrf_token"]
    return c


def one_run(url: str, admin: httpx.Client, operator_id: int) -> tuple[float, int | None]:
    op = login(url, DEMO_OPERATOR)
    cookie = f"pers_session={op.cookies['pers_session']}"
    with connect(url.replace("http", "ws", 1) + "/api/ws", additional_headers={"Cookie": cookie}) as ws:
        ws.recv(timeout=10)  # the snapshot
        t0 = time.perf_counter()
        admin.patch(f"/api/admin/operators/{operator_id}", json={"active": False}).raise_for_status()
        code = None
        try:
            while True:
                ws.recv(timeout=30)
        except ConnectionClosed as e:
            code = e.rcvd.code if e.rcvd else None
        elapsed = time.perf_counter() - t0
    admin.patch(f"/api/admin/operators/{operator_id}", json={"active": True}).raise_for_status()
    return elapsed, code


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), log_json=False)
        upgrade(settings.db_url)
        svc = build_services(settings, with_mqtt=False)
        seed_demo(svc.sm, svc.clock, Path(tmp))
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(build_app(settings, svc), host="127.0.0.1", port=port,
                                               log_config=None, access_log=False, ws="websockets-sansio"))
        threading.Thread(target=server.run, daemon=True).start()
        while not server.started:
            time.sleep(0.02)
        url = f"http://127.0.0.1:{port}"
        admin = login(url, DEMO_ADMIN)
        operator_id = next(o["id"] for o in admin.get("/api/admin/operators").json()["items"]
                           if o["username"] == DEMO_OPERATOR[0])
        runs = [one_run(url, admin, operator_id) for _ in range(args.runs)]
        server.should_exit = True
    times = sorted(t for t, _ in runs)
    result = {"runs": len(runs), "close_codes": sorted({c for _, c in runs}, key=str),
              "close_s": {"median": round(statistics.median(times), 4), "max": round(times[-1], 4),
                          "min": round(times[0], 4)}}
    print(result)
    write_result("session_revocation", result)


if __name__ == "__main__":
    main()
