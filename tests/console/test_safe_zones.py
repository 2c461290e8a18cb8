"""Safe zones in Debian's Chromium against the real cloud: an admin draws a school
on the admin page's map (a click for the centre), is refused a 5 m radius next to
the field, saves a 150 m one; the watch then leaves the school and the operator's
queue shows a geofence alarm, styled as one, with the zone's name."""
import json
import time
from datetime import UTC, datetime

import playwright.sync_api as playwright_api
import pytest
from sqlalchemy import update

from cloud.seed import DEMO_OPERATOR
from cloud.store.models import Wearer
from tests.console.test_operator import ARTIFACTS, DeviceSide, browser, log_in  # noqa: F401 (browser: a fixture)
from tests.console.test_supervisor import ADMIN, add_admin, open_page

expect = playwright_api.expect


def loc(watch, mid, lat, lon):
    body = {"v": 1, "mid": mid, "ts": int(time.time()), "reason": "periodic",
            "loc": {"lat": lat, "lon": lon, "acc": 8.0, "src": "gnss", "ts": int(time.time())}}
    watch.client.publish(f"pers/v1/{watch.id}/loc", json.dumps(body), qos=1).wait_for_publish(5)


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)  # the page's behaviour: one database is enough
def test_an_admin_draws_a_school_and_the_queue_shows_the_child_leaving_it(stack_factory, browser):
    def utc_wearer(sm, seed):  # the schedule below is written in UTC
        with sm() as s:
            s.execute(update(Wearer).where(Wearer.id == seed.wearer_id).values(timezone="UTC"))
            s.commit()

    stack = stack_factory(before_start=utc_wearer)
    add_admin(stack)
    page = open_page(browser, stack, ADMIN, "/admin#zones")
    page.wait_for_selector("body[data-ready=true]")
    page.click("#tab-zones")
    page.fill("#z-name", "School")
    page.locator("#zone-map").click()  # the map's centre: the wearer's home (45.7640, 4.8357)
    assert abs(float(page.input_value("#z-lat")) - 45.7640) < 0.005
    assert abs(float(page.input_value("#z-lon")) - 4.8357) < 0.005
    page.fill("#z-radius", "5")
    now = datetime.now(UTC)
    for i in range(7):  # every day, so that now is in the schedule whatever the day
        page.locator("#z-days input").nth(i).check()
    page.fill("#z-from", "00:00")
    page.fill("#z-to", "23:59")
    if now.strftime("%H:%M") >= "23:58":  # too near the window's end: no schedule
        page.check("#z-always")
    page.click("#add-zone")
    expect(page.locator("#z-radius + .field-error")).to_contain_text("the radius is from 20 m to 50 km")
    page.fill("#z-radius", "150")
    page.click("#add-zone")
    expect(page.locator("#zone-saved")).to_be_visible()
    expect(page.locator("#zones-table tbody tr")).to_contain_text("circle, 150 m")
    page.screenshot(path=str(ARTIFACTS / "console-admin-zones.png"))
    lat, lon = float(page.input_value("#z-lat")), float(page.input_value("#z-lon"))

    ops = log_in(browser, stack.url, DEMO_OPERATOR)
    watch = DeviceSide(stack)
    loc(watch, "9.1", lat, lon)          # at school: sets the side
    loc(watch, "9.2", lat + 0.006, lon)  # ~670 m north: out
    card = ops.locator("#queue li.kind-geofence")
    expect(card).to_have_attribute("data-group", "geofence", timeout=15000)
    expect(card).to_contain_text("Left safe zone")
    expect(card).to_contain_text("Left School at")
    watch.close()
