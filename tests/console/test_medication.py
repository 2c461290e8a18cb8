"""The admin page's Medication tab in Debian's Chromium against the real cloud: an
admin adds the wearer's morning pills (a time, weekdays, the text, a confirmation
within 20 minutes), sends them, and the watch's next config carries them; a stored
dose shows in the adherence line and the list."""
from datetime import UTC, date, datetime

import playwright.sync_api as playwright_api
import pytest

from cloud.domain.configs import latest_config
from cloud.store.models import ReminderDose
from tests.console.test_operator import ARTIFACTS, browser  # noqa: F401 (browser: a fixture)
from tests.console.test_supervisor import ADMIN, add_admin, open_page

expect = playwright_api.expect


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)  # the page's behaviour: one database is enough
def test_an_admin_sets_the_pills_and_sees_adherence(stack_factory, browser):
    stack = stack_factory()
    add_admin(stack)
    seed = stack.seed
    with stack.services.sm() as s:  # a dose the watch reported missed, earlier today
        s.add(ReminderDose(tenant_id=seed.tenant_id, device_id=seed.device_id, wearer_id=seed.wearer_id,
                           reminder_id="r9", day=date.today(), due_at=datetime.now(UTC).replace(tzinfo=None),
                           status="missed", source="watch", text="Old pills", late_report=False,
                           recorded_at=datetime.now(UTC).replace(tzinfo=None), notified_to="family"))
        s.commit()
    page = open_page(browser, stack, ADMIN, "/admin#reminders")
    page.wait_for_selector("body[data-ready=true]")
    page.click("#tab-reminders")
    expect(page.locator("#m-adherence-7")).to_have_text("1 due, 0 confirmed, 1 missed")
    expect(page.locator("#m-doses tbody tr")).to_contain_text("Old pills")
    page.click("#m-add")
    row = page.locator("#m-table tbody tr").last
    row.locator(".m-at").fill("08:30")
    row.locator(".m-text").fill("Morning pills")
    for day in (5, 6):  # weekdays only
        row.locator(".m-days input").nth(day).uncheck()
    row.locator(".m-window").fill("20")
    page.click("#m-save")
    expect(page.locator("#m-saved")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "console-admin-medication.png"))
    with stack.services.sm() as s:
        cfg = latest_config(s, seed.device_id)
    assert cfg is not None and cfg.body["reminders"] == [
        {"at": "08:30", "text": "Morning pills", "id": "r1", "days": [0, 1, 2, 3, 4], "confirm": True,
         "window_min": 20}]
