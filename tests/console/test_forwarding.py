"""Forwarding seen from the browsers (Debian's Chromium via Playwright) against the
real service, its forwarder thread included: the admin adds an alarm receiver on
the Tenant tab and sends it a test report, which pysiaalarm's receiver (an
independent SIA DC-09 implementation, on loopback) gets as SIA "RP"; with the
receiver down, the next one fails and the supervisor page says so live."""
from __future__ import annotations

import threading
import time

import playwright.sync_api as playwright_api
import pytest

from cloud.seed import DEMO_ADMIN, DEMO_SUPERVISOR
from tests.cloud.forwarding.test_forward_to_receiver import ACCOUNT, Receiver, free_port
from tests.console.test_operator import ARTIFACTS, browser, log_in  # noqa: F401 (browser: a fixture)

expect = playwright_api.expect


def wait_until(done, timeout_s: float = 15.0) -> None:
    deadline, pause = time.monotonic() + timeout_s, threading.Event()
    while not done():
        assert time.monotonic() < deadline, "condition not met in time"
        pause.wait(0.05)


@pytest.mark.parametrize("database", ["sqlite"])  # the outbox on both databases: tests/cloud/forwarding
def test_admin_adds_a_receiver_tests_it_and_the_supervisor_sees_a_failure(stack_factory, browser):
    rcv = Receiver(free_port()).start()
    try:
        stack = stack_factory(outbound_allow_loopback=True, forward_period_s=0.1, forward_tries=1,
                              forward_retry_base_s=0.5, forward_timeout_s=2.0)
        sup = log_in(browser, stack.url, DEMO_SUPERVISOR)
        sup.goto(stack.url + "/supervisor")
        sup.wait_for_selector("body[data-connection=live]")
        admin = log_in(browser, stack.url, DEMO_ADMIN)
        admin.goto(stack.url + "/admin#tenant")
        admin.wait_for_selector("body[data-ready=true]")
        admin.fill("#r-name", "ARC Lyon receiver")
        admin.fill("#r-host", "127.0.0.1")
        admin.fill("#r-port", str(rcv.port))
        admin.select_option("#r-fmt", "SIA-DCS")
        admin.fill("#r-account", ACCOUNT)
        admin.click("#add-receiver")
        row = admin.locator("#receivers-table tbody tr", has_text="ARC Lyon receiver")
        expect(row).to_contain_text("forwarding")
        expect(row).to_contain_text(f"TCP 127.0.0.1:{rcv.port}")
        row.get_by_role("button", name="Send a test report").click()
        wait_until(lambda: rcv.alarms() == [(ACCOUNT, "RP", None, "000")])
        admin.screenshot(path=str(ARTIFACTS / "console-admin-receivers.png"))
        rcv.stop()  # the receiver goes down: the next report is not acknowledged
        row.get_by_role("button", name="Test queued").click()
        expect(sup.locator("#forwarding")).to_contain_text("ARC Lyon receiver: test report not acknowledged",
                                                          timeout=15000)
        sup.screenshot(path=str(ARTIFACTS / "console-supervisor-forwarding.png"))
    finally:
        rcv.stop()
