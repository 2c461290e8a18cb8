"""The console says only what happened, in Debian's Chromium driven by Playwright,
against the real cloud, broker and database (SQLite and PostgreSQL): Notify
really delivers (a webhook to a receiver on loopback started here) and says who
was reached; a call-back is "requested" until the watch acknowledges it; a cell
fix is shown with its accuracy; one battery figure with its time; the vitals
update during the case; Locate shows its progress; the resolving note is in the
timeline; no internal code reaches the screen; the wearer's form refuses a birth
date in the future and reads phone numbers as people write them."""
import json
import re
import threading
import time
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import playwright.sync_api as playwright_api
import pytest
from sqlalchemy import delete

from cloud.seed import DEMO_OPERATOR, DEMO_SUPERVISOR
from cloud.store.models import Contact
from tests.conftest import free_port
from tests.console.test_operator import ARTIFACTS, DeviceSide, browser, log_in  # noqa: F401 (browser: a fixture)
from tests.console.test_supervisor import ADMIN, add_admin, open_page

expect = playwright_api.expect
HOME = (45.7640, 4.8357)  # the demo wearer's home
INTERNAL = re.compile(r"\b(routed|in_call|claimed|escalation_exhausted|contact_notified|call_back|level \d)\b")


@pytest.fixture(autouse=True, scope="module")
def patient_assertions():
    """This machine's CPUs are shared: give each assertion 15 s (Playwright's default
    is 5 s), then put the default back for the other modules."""
    expect.set_options(timeout=15_000)
    yield
    expect.set_options(timeout=5_000)


@pytest.fixture
def receiver():
    """A webhook receiver on loopback: what the cloud POSTs to it, in order."""
    got: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            got.append(json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0)))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *a):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/hook", got
    srv.shutdown()
    srv.server_close()


def publish(watch, kind, body):
    body = {"v": 1, "ts": int(time.time()), **body}
    watch.client.publish(f"pers/v1/{watch.id}/{kind}", json.dumps(body), qos=1).wait_for_publish(5)


def alarm(watch, mid, **parts):
    publish(watch, "alert", {"mid": mid, "kind": "sos", "trigger": "button", **parts})


def claim(page):
    page.get_by_role("button", name=re.compile("^Acknowledge")).click()
    expect(page.get_by_role("button", name=re.compile("^Acknowledged by you"))).to_be_disabled()


def facts(page):
    return page.locator("#detail-facts")


def test_notify_reaches_the_contact_through_a_real_webhook_and_says_so(stack_factory, browser, receiver):
    url, got = receiver
    stack = stack_factory(webhook_url=url, outbound_allow_http=True, outbound_allow_loopback=True)
    page = log_in(browser, stack.url, DEMO_OPERATOR)
    watch = DeviceSide(stack)
    watch.sos()
    # The new alarm opens by itself, with its contacts and timeline at once (no click).
    expect(page.locator("#contacts")).to_contain_text("Sophie Martin", timeout=10000)
    expect(page.locator("#timeline")).to_contain_text("Alarm received: SOS")
    expect(page.locator("#notify")).to_contain_text("Notify Sophie Martin 06 11 11 11 11")
    claim(page)

    page.get_by_role("button", name=re.compile("^Notify Sophie Martin")).click()
    expect(page.locator("#timeline")).to_contain_text("Sophie Martin reached by web hook", timeout=15000)
    expect(page.locator("#contacts")).to_contain_text("reached by web hook at")
    assert [(m["contact"]["name"], m["wearer"]) for m in got] == [("Sophie Martin", "Jeanne Martin")]

    page.get_by_role("button", name=re.compile("^Notify Marc Bernard")).click()
    expect(page.locator("#timeline")).to_contain_text("Marc Bernard reached by web hook", timeout=15000)
    expect(page.get_by_role("button", name=re.compile("^Every contact tried"))).to_be_disabled()
    assert [m["contact"]["name"] for m in got] == ["Sophie Martin", "Marc Bernard"]
    assert "All contacts notified" not in page.inner_text("body")
    page.screenshot(path=str(ARTIFACTS / "console-notify.png"))
    watch.close()


def test_without_a_channel_or_contacts_nothing_is_claimed_as_sent(stack_factory, browser):
    stack = stack_factory()  # no webhook, no SMTP, no SMS gateway
    page = log_in(browser, stack.url, DEMO_OPERATOR)
    watch = DeviceSide(stack)
    watch.sos()
    expect(page.locator("#contacts")).to_contain_text("Sophie Martin", timeout=10000)
    claim(page)
    page.get_by_role("button", name=re.compile("^Notify Sophie Martin")).click()
    expect(page.get_by_role("alert")).to_contain_text(
        "nothing was sent to Sophie Martin: no notification channel (webhook, e-mail or SMS) is set up")
    expect(page.locator("#timeline")).to_contain_text("Sophie Martin NOT reached")
    expect(page.locator("#contacts")).to_contain_text("not reached")
    assert "reached by" not in page.inner_text("#timeline")

    # A wearer without contacts: the console does not say "All contacts notified".
    with stack.services.sm() as s:
        s.execute(delete(Contact).where(Contact.wearer_id == stack.seed.wearer_id))
        s.commit()
    page.reload()
    page.wait_for_selector("body[data-synced=yes]")
    page.locator("#queue li").first.click()
    expect(page.get_by_role("button", name=re.compile("^No contacts to notify"))).to_be_disabled(timeout=10000)
    assert "All contacts notified" not in page.inner_text("body")
    watch.close()


def test_call_back_is_requested_until_the_watch_acknowledges_it(stack, browser):
    page = log_in(browser, stack.url, DEMO_OPERATOR)
    watch = DeviceSide(stack)
    watch.sos()
    expect(page.locator("#detail-title")).to_contain_text("Jeanne Martin", timeout=10000)
    claim(page)
    page.get_by_role("button", name=re.compile("^Call back")).click()
    call = watch.wait_command(lambda c: c["type"] == "call")
    expect(facts(page)).to_contain_text("Call-back requested at")
    expect(facts(page)).to_contain_text("sent to the watch, not yet acknowledged")
    expect(page.locator("#detail-badges")).to_contain_text("call-back requested")
    text = page.inner_text("#detail")
    assert "In call" not in text and "in call" not in text and "in_call" not in text
    publish(watch, "ack", {"mid": "1.90", "cid": call["cid"], "ok": True})
    expect(facts(page)).to_contain_text("the watch acknowledged at", timeout=10000)
    assert "In call" not in page.inner_text("#detail")
    watch.close()


def test_a_cell_fix_shows_its_accuracy_and_no_finer_distance(stack, browser):
    page = log_in(browser, stack.url, DEMO_OPERATOR)
    watch = DeviceSide(stack)
    # A cell tower places the wearer 747 m north of home, give or take 800 m.
    alarm(watch, "5.1", loc={"lat": HOME[0] + 747 / 111_195, "lon": HOME[1], "acc": 800.0, "src": "cell"})
    expect(facts(page)).to_contain_text("at home or nearby (within about 800 m)", timeout=10000)
    expect(facts(page)).to_contain_text("cell tower, accurate to about 800 m")
    expect(page.locator("#map-caption")).to_contain_text("about 800 m")
    assert "747" not in page.inner_text("#detail")
    # The map draws the accuracy circle, 800 m in radius.
    radii = page.evaluate("() => { const r = []; state.layers.eachLayer((l) => { if (l instanceof L.Circle) "
                          "r.push(l.getRadius()); }); return r; }")
    assert radii == [800]
    page.screenshot(path=str(ARTIFACTS / "console-accuracy.png"))
    watch.close()


def test_battery_is_one_figure_with_its_time_and_vitals_follow_the_case(stack, browser):
    page = log_in(browser, stack.url, DEMO_OPERATOR)
    sup = open_page(browser, stack, DEMO_SUPERVISOR, "/supervisor")
    sup.wait_for_selector("body[data-synced=yes]")  # its live feed is in before the alarm is sent
    watch = DeviceSide(stack)
    alarm(watch, "6.1", batt={"pct": 15})  # no heart rate: the alarm left before a reading
    expect(facts(page)).to_contain_text(re.compile(r"Battery\s*15% at \d\d:\d\d"), timeout=10000)
    assert "bpm" not in page.inner_text("#detail-facts")
    # The supervisor counts the low watch among the devices needing attention.
    expect(sup.locator("#devices-count")).to_have_text("1", timeout=10000)
    expect(sup.locator("#devices")).to_contain_text("15% low at")

    publish(watch, "loc", {"mid": "6.2", "reason": "alarm", "ref": "6.1", "batt": {"pct": 14},
                           "vitals": {"hr": 97}, "loc": {"lat": HOME[0], "lon": HOME[1], "acc": 9.0, "src": "gnss"}})
    expect(facts(page)).to_contain_text(re.compile(r"Heart rate\s*97 bpm at \d\d:\d\d"), timeout=10000)
    publish(watch, "status", {"mid": "6.3", "batt": {"pct": 25}, "vitals": {"hr": 110}})
    expect(facts(page)).to_contain_text("110 bpm", timeout=10000)
    expect(facts(page)).to_contain_text(re.compile(r"Battery\s*25% at \d\d:\d\d"))
    case_id = page.locator("#queue li").first.get_attribute("data-case-id")
    seen = page.evaluate("id => fetch('/api/cases/' + id).then(r => r.json())", case_id)
    assert seen["battery"]["pct"] == 25 and seen["heart_rate"] == 110
    watch.close()


def test_locate_shows_sent_acknowledged_and_the_new_fix(stack, browser):
    page = log_in(browser, stack.url, DEMO_OPERATOR)
    watch = DeviceSide(stack)
    watch.sos()
    expect(page.locator("#detail-title")).to_contain_text("Jeanne Martin", timeout=10000)
    claim(page)
    page.get_by_role("button", name=re.compile("^Locate now")).click()
    cmd = watch.wait_command(lambda c: c["type"] == "locate")
    expect(facts(page)).to_contain_text("sent to the watch, not yet acknowledged; waiting for the new position")
    publish(watch, "ack", {"mid": "7.1", "cid": cmd["cid"], "ok": True})
    expect(facts(page)).to_contain_text("the watch acknowledged at", timeout=10000)
    publish(watch, "loc", {"mid": "7.2", "reason": "request", "ref": cmd["cid"],
                           "loc": {"lat": HOME[0] + 0.001, "lon": HOME[1], "acc": 6.0, "src": "gnss"}})
    expect(facts(page)).to_contain_text(re.compile(r"new position at \d\d:\d\d:\d\d \(about 6 m\)"), timeout=10000)
    watch.close()


def test_the_timeline_speaks_plain_words_and_keeps_the_resolving_note(stack_factory, browser):
    stack = stack_factory(escalate_unclaimed_s=2, tick_s=0.5)
    page = log_in(browser, stack.url, DEMO_OPERATOR)
    watch = DeviceSide(stack)
    watch.sos()
    # Unclaimed past its time: escalated, and said so in words.
    expect(page.locator("#timeline")).to_contain_text("Not acknowledged after", timeout=15000)
    claim(page)
    page.get_by_role("button", name=re.compile("^Call back")).click()
    expect(page.locator("#timeline")).to_contain_text("Call-back requested")
    page.get_by_label("Note").fill("Neighbour checked: all fine")
    page.get_by_label("Outcome").select_option("wearer_ok")
    page.get_by_role("button", name=re.compile("^Resolve")).click()
    expect(page.locator("#timeline")).to_contain_text("Closed: wearer OK. Note: Neighbour checked: all fine",
                                                      timeout=10000)
    shown = page.inner_text("#detail")
    assert not INTERNAL.search(shown), INTERNAL.search(shown)
    assert "_" not in page.inner_text("#timeline")
    page.screenshot(path=str(ARTIFACTS / "console-timeline-words.png"))
    watch.close()


def test_wearer_form_refuses_a_future_birth_date_and_reads_phone_numbers(stack, browser):
    add_admin(stack)
    page = open_page(browser, stack, ADMIN, "/admin")
    page.wait_for_selector("body[data-ready=true]")
    page.click("#tab-wearers")
    page.fill("#w-name", "Lucien Petit")
    page.get_by_label("Birth date").fill((date.today() + timedelta(days=400)).isoformat())
    page.fill("#w-c0-name", "Paul")
    page.fill("#w-c0-phone", "0611")
    page.click("#add-wearer")
    expect(page.locator("#w-birth + .field-error")).to_have_text("the birth date is in the future")
    page.get_by_label("Birth date").fill("1940-05-02")
    page.click("#add-wearer")
    expect(page.get_by_role("alert").filter(has_text="needs its country code")).to_be_visible()
    page.fill("#w-c0-phone", "+33 6 12 34 56 78")
    page.click("#add-wearer")
    row = page.locator("#wearers-table tr", has_text="Lucien Petit")
    expect(row).to_contain_text("Paul 06 12 34 56 78")
    stored = page.evaluate("() => fetch('/api/admin/wearers?q=Lucien').then(r => r.json())")
    assert stored["items"][0]["contacts"][0]["phone"] == "+33612345678"
    assert stored["items"][0]["birth_date"] == "1940-05-02"
