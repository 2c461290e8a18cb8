"""Closed cases and their outcome report in real headless Chromium against the real
stack: search by wearer, date range and outcome; the report's response times,
calls, notifications, operator actions and timeline; its print view and its CSV
export, which is audited (each test on SQLite and on PostgreSQL)."""
from __future__ import annotations

import csv
import io
import re
import time
from datetime import timedelta

import playwright.sync_api as playwright_api
from sqlalchemy import select, update

from cloud.seed import DEMO_OPERATOR
from cloud.store.models import AlertCase, AuditEntry, Operator
from tests.console.test_operator import ARTIFACTS, DeviceSide, browser, log_in  # noqa: F401 (browser: a fixture)
from tests.console.test_queue import watches
from tests.console.test_truth import receiver  # noqa: F401 (a fixture)

expect = playwright_api.expect


def open_case_of(stack, device_id, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with stack.services.sm() as s:
            found = s.scalar(select(AlertCase.id).where(AlertCase.device_id == device_id,
                                                        AlertCase.status != "resolved"))
        if found is not None:
            return found
        time.sleep(0.1)
    raise AssertionError(f"no open case for {device_id}")


def test_closed_cases_are_found_and_each_gives_its_outcome_report(stack_factory, browser, receiver):
    # Notify really sends: the contact is reached through a webhook on loopback.
    stack = stack_factory(webhook_url=receiver[0], outbound_allow_http=True, outbound_allow_loopback=True)
    cases = stack.services.cases
    with stack.services.sm() as s:
        op = s.scalar(select(Operator).where(Operator.username == DEMO_OPERATOR[0]))
    watch = DeviceSide(stack)
    watch.sos()
    jeanne = open_case_of(stack, watch.id)
    cases.claim(op, jeanne)
    cases.call_back(op, jeanne)
    cases.notify_next_contact(op, jeanne)
    cases.dispatch(op, jeanne, "ambulance", "SAMU-69-4411")
    cases.resolve(op, jeanne, "ambulance", "taken to hospital")
    (other,) = watches(stack, 1, prefix="hist")
    other.alert("sos")
    unknown = open_case_of(stack, other.id)
    cases.claim(op, unknown)
    cases.resolve(op, unknown, "false_alarm", None)
    # The second case happened three days ago (dated back in the database).
    with stack.services.sm() as s:
        back = stack.services.clock.now() - timedelta(days=3)
        s.execute(update(AlertCase).where(AlertCase.id == unknown).values(opened_at=back))
        s.commit()
    today = stack.services.clock.now().date()

    page = log_in(browser, stack.url, DEMO_OPERATOR)
    page.get_by_role("link", name="History").click()
    page.wait_for_selector("body[data-ready=yes]")
    results = page.get_by_role("table", name="Closed cases found")
    expect(results.get_by_role("row")).to_have_count(3)  # the header and two cases
    search = page.get_by_role("search")
    search.get_by_label("Wearer", exact=True).fill("jeanne")
    search.get_by_role("button", name="Search").click()
    expect(results.get_by_role("row")).to_have_count(2)
    expect(results).to_contain_text("Jeanne Martin")
    search.get_by_label("Wearer", exact=True).fill("")
    search.get_by_label("Outcome").select_option("false_alarm")
    search.get_by_role("button", name="Search").click()
    expect(results.get_by_role("row")).to_have_count(2)
    expect(results).to_contain_text(other.id)
    search.get_by_label("Outcome").select_option("")
    search.get_by_label("From").fill(today.isoformat())
    search.get_by_label("To").fill(today.isoformat())
    search.get_by_role("button", name="Search").click()
    expect(results.get_by_role("row")).to_have_count(2)
    expect(results).to_contain_text("Jeanne Martin")
    search.get_by_label("From").fill((today - timedelta(days=4)).isoformat())
    search.get_by_label("To").fill((today - timedelta(days=2)).isoformat())
    search.get_by_role("button", name="Search").click()
    expect(results.get_by_role("row")).to_have_count(2)
    expect(results).to_contain_text(other.id)

    search.get_by_label("From").fill("")
    search.get_by_label("To").fill("")
    search.get_by_role("button", name="Search").click()
    results.get_by_role("button", name=f"Report {jeanne}").click()
    report = page.get_by_role("region", name=re.compile(f"Outcome report · case {jeanne}"))
    expect(report).to_contain_text("Jeanne Martin")
    expect(report).to_contain_text("Ambulance")
    expect(page.get_by_role("list", name="Calls")).to_contain_text("call back requested")
    expect(page.get_by_role("list", name="Notifications")).to_contain_text("contact notified · Sophie Martin")
    actions = page.get_by_role("list", name="Operator actions")
    for text in ("acknowledged", "call back requested", "dispatch recorded · ambulance ref SAMU-69-4411", "resolved"):
        expect(actions).to_contain_text(text)
    expect(page.get_by_role("list", name="Timeline")).to_contain_text("alarm opened")
    expect(report).to_contain_text(re.compile(r"Answered after\s*\d+\.\d s"))
    expect(page).to_have_url(re.compile(f"/history#case-{jeanne}$"))

    # The print view: the report alone, without the search and the header.
    page.emulate_media(media="print")
    expect(page.get_by_role("search")).to_be_hidden()
    expect(report).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "console-outcome-report.png"), full_page=True)
    page.emulate_media(media="screen")

    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    rows = list(csv.reader(io.StringIO(download.value.path().read_text(encoding="utf-8"))))
    assert rows[0][:4] == ["case", "wearer", "kind", "outcome"]
    assert rows[1][1:4] == ["Jeanne Martin", "sos", "ambulance"]
    assert [r[2] for r in rows[4:]][:2] == ["opened", "routed"]
    noted = [r for r in rows[4:] if r[2] == "resolved"]
    assert noted and "taken to hospital" in noted[0][3]
    with stack.services.sm() as s:
        exports = s.execute(select(AuditEntry.actor, AuditEntry.target).where(AuditEntry.action == "export")).all()
    assert exports == [("operator:operator", f"case:{jeanne}")]
    watch.close()
    other.close()
