"""The supervisor's figures against known claim times, the live queue health and
the devices needing attention with their reason, in real headless Chromium against
the real stack (each test on SQLite and on PostgreSQL)."""
from __future__ import annotations

import json
import time
from datetime import timedelta

import playwright.sync_api as playwright_api
from sqlalchemy import select, update

from cloud.seed import DEMO_OPERATOR, DEMO_SUPERVISOR
from cloud.store.models import AlertCase, Operator
from tests.console.test_operator import ARTIFACTS, DeviceSide, browser, log_in  # noqa: F401 (browser: a fixture)
from tests.console.test_queue import watches
from tests.console.test_supervisor import open_page

expect = playwright_api.expect


def claim_after(stack, device_id, seconds):
    """The operator claims the case of ``device_id``; its alarm is dated ``seconds``
    before the claim (the claim itself goes through the case service)."""
    svc = stack.services
    with svc.sm() as s:
        op = s.scalar(select(Operator).where(Operator.username == DEMO_OPERATOR[0]))
        case_id = s.scalar(select(AlertCase.id).where(AlertCase.device_id == device_id))
    svc.cases.claim(op, case_id)
    with svc.sm() as s:
        claimed = s.get(AlertCase, case_id).claimed_at
        opened = claimed - timedelta(seconds=seconds)
        s.execute(update(AlertCase).where(AlertCase.id == case_id).values(opened_at=opened, routed_at=opened))
        s.commit()


def wait_cases(stack, n):
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        with stack.services.sm() as s:
            if len(s.scalars(select(AlertCase.id)).all()) >= n:
                return
        time.sleep(0.1)
    raise AssertionError(f"fewer than {n} cases opened")


def test_sla_median_and_max_queue_health_and_devices_with_their_reason(stack, browser):
    first, second, waiting = watches(stack, 3, prefix="sla")
    first.alert("sos")
    second.alert("fall")
    wait_cases(stack, 2)
    claim_after(stack, first.id, 19.0)
    claim_after(stack, second.id, 27.2)
    waiting.alert("sos")
    wait_cases(stack, 3)
    # The demo watch reports a low battery.
    watch = DeviceSide(stack)
    status = {"v": 1, "mid": "1.70", "ts": int(time.time()), "batt": {"pct": 15}}
    watch.client.publish(f"pers/v1/{watch.id}/status", json.dumps(status), qos=1).wait_for_publish(5)

    sup = open_page(browser, stack, DEMO_SUPERVISOR, "/supervisor")
    sup.wait_for_selector("body[data-synced=yes]")
    expect(sup.locator("#sla-median")).to_have_text("23.1 s / 27.2 s", timeout=10000)
    expect(sup.locator("#today-10")).to_have_text("0%", timeout=10000)
    expect(sup.locator("#today-10-count")).to_have_text("0 of 2")
    expect(sup.locator("#today-40")).to_have_text("100%")
    expect(sup.locator("#today-40-count")).to_have_text("2 of 2")
    expect(sup.locator("#today-pending")).to_have_text("1 still waiting, not yet counted")
    expect(sup.locator("#health-waiting")).to_have_text("1")
    expect(sup.locator("#health-longest")).to_have_text(__import__("re").compile(r"^\d+ s$"))
    held = sup.get_by_role("table", name="Cases held by each operator")
    expect(held.get_by_role("row", name="Claire (night shift) 2")).to_be_visible()
    devices = sup.locator("#devices")
    expect(devices.get_by_role("row").filter(has_text=watch.id)).to_contain_text(
        "battery low (15%): ask the wearer to charge it", timeout=25000)
    sup.screenshot(path=str(ARTIFACTS / "console-supervisor-health.png"))
    for w in (first, second, waiting):
        w.close()
    watch.close()
