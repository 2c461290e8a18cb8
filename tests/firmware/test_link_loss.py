"""Packet loss on the data link: TCP turns it into retransmission
delays, stalls and dropped connections; the firmware's QoS 1 resend (DUP) and
its outbox must still get the alert to the cloud once and the ack back."""
from __future__ import annotations

from hwsim.scenario import LinkSpec, Scenario

from .conftest import DEV


def test_sos_under_twenty_percent_bursty_loss_reaches_the_cloud_once_and_is_acked(make_watch, cloud):
    scenario = Scenario(name="lossy", link=LinkSpec(loss=0.2, burst=3.0, seed=7))
    with make_watch(scenario) as w:
        cloud.wait("status", timeout=60)
        w.press("red", 1.2)
        alert = cloud.wait("alert", timeout=60)[0]
        cloud.command(DEV, cid="loss-1", type="alert_ack", ref=alert["mid"], stage="received")
        assert w.wait_display("Help is coming", 600), w.displays
        w.sleep(60)
        retransmits, segments = w.link.retransmits, w.link.segments
        stalls = [e for e in w.events if e["type"] == "link" and e.get("state") == "stall"]
    sos = [p for p in cloud.received("alert") if p["kind"] == "sos"]
    assert {p["mid"] for p in sos} == {alert["mid"]}  # one alert, however often it was carried
    assert not (w.flash_dir / "outbox").exists() or not list((w.flash_dir / "outbox").glob("a*.msg"))
    # the loss was real: segments were lost and retransmitted, and the link stalled
    assert segments > 20 and retransmits > 0.05 * segments and stalls


def test_a_dead_air_link_is_dropped_and_the_watch_reconnects_when_it_clears(make_watch, cloud):
    scenario = Scenario(name="dead-air", link=LinkSpec(loss=0.0, burst=5.0, seed=3))
    with make_watch(scenario, device_extra={"linger_ms": 3_600_000}) as w:
        cloud.wait("status", timeout=60)
        w.set_loss(1.0)  # every packet lost: TCP gives up after its retransmissions
        w.press("red", 1.2)
        assert w.wait_display("Calling for help", 10)
        assert w.wait_for(lambda e: e["type"] == "link" and e.get("state") == "dropped", 300)
        assert not cloud.received("alert")
        w.set_loss(0.0)
        alert = cloud.wait("alert", timeout=60)[0]
        cloud.command(DEV, cid="loss-2", type="alert_ack", ref=alert["mid"], stage="received")
        assert w.wait_display("Help is coming", 300)
