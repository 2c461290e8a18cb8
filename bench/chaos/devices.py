"""What the devices of the chaos run do beyond an ordinary twin: alarms with a kind, a
clock offset or a poison field of the run's choosing, a factory reset mid-run, and a
real firmware watch whose power is cut while its alarm is written and sent."""
from __future__ import annotations

import asyncio
import itertools
import json
import random
import time

# Alarms as a broken or hostile watch writes them: each must still be stored and acked.
POISON_ALARMS = ('"ts":1180591620717411303424', '"loc":{"lat":45.76,"lon":4.83,"acc":Infinity,"src":"gnss"}',
                 '"loc":{"lat":95,"lon":4.83,"src":"gnss","ts":10000000000000}', '"batt":{"pct":NaN}',
                 '"fw":"\\u0000"', '"kind":"intruder"', '"loc":{"lat":45.76,"lon":4.83,"src":"cell"}')


def send_alert(twin, kind: str, ts_offset: int = 0, poison: str | None = None) -> str:
    """Like Twin.send_alert, with a kind, a clock offset or a poison field of our choosing
    (written into the JSON text, as a broken watch would: json.dumps cannot write NaN
    where we want it, nor a 2^70 clock as text)."""
    msg = twin.alert_msg(kind)
    if ts_offset:
        msg["ts"] += ts_offset
        msg["loc"]["ts"] += ts_offset
    if poison is None:
        payload = twin.publish("alert", msg)
    else:
        key = poison.split('"')[1]
        msg.pop(key, None)
        text = json.dumps(msg, separators=(",", ":"))[:-1] + "," + poison + "}"
        payload = twin.publish("alert", {}, raw=text.encode())
        twin.fleet.stats.sent["alert"] += 1
    now = time.perf_counter()
    twin.pending[msg["mid"]] = (now, payload)
    twin.fleet.alert_published(twin, msg["mid"], now)
    loop = asyncio.get_running_loop()
    loop.call_later(twin.fleet.alert_resend_s, twin._resend, msg["mid"], twin.fleet.alert_resend_s)
    return msg["mid"]


async def factory_reset(twin) -> bool:
    """Wipe the twin as a reflash would: its ids count from the first again. Only once it
    has no alarm waiting (a wipe erases the outbox: an alarm in it would be lost by the
    watch itself, not by the system under test)."""
    for _ in range(600):
        if not twin.pending:
            break
        await asyncio.sleep(0.1)
    else:
        return False
    await asyncio.sleep(1.0)  # let acks of its last alarms land first
    twin.seq = itertools.count(1)
    return True


def firmware_watch(device_id: str, secret: str, port: int, press_at: float, seed: int, ca=None) -> dict:
    """One real watch through the faulty link: the wearer presses SOS, the power is cut
    while the alarm is stored and sent, power returns and the wearer presses again.
    Done when the flash outbox is empty: every alert left it only on the cloud's ack.
    With ``ca`` the watch is provisioned for TLS and its modem verifies the broker against it."""
    from hwsim.runner import Watch
    from hwsim.scenario import load

    rng = random.Random(seed)
    link_up = lambda ev: ev.get("type") == "link" and ev.get("state") == "up"  # noqa: E731
    result = {"device": device_id, "acked": False, "delay_s": None, "outbox_left": None, "power_cuts": 0}
    with Watch(device_id, secret, broker=("127.0.0.1", port), scenario=load("sos_demo"), ca=ca) as w:
        w.wait_for(link_up, timeout=120)
        time.sleep(max(0.0, press_at - time.monotonic()))
        t0 = time.monotonic()
        w.press("red", hold_s=1.2, wait=True)
        time.sleep(rng.uniform(0.02, 0.8))  # mid-write or mid-publish
        mark = len(w.events)
        w.power_cut()
        result["power_cuts"] += 1
        w.wait_for(lambda ev: ev.get("type") == "firmware" and ev.get("state") == "started", 30, start=mark)
        time.sleep(rng.uniform(2.0, 6.0))
        w.press("red", hold_s=1.2, wait=True)
        outbox = w.flash_dir / "outbox"
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            pending = list(outbox.glob("a*.msg")) if outbox.exists() else []
            if not pending and w.wait_for(lambda ev: ev.get("type") == "display"
                                          and ev.get("text") == "Help is coming", 0.5, start=mark):
                result["acked"], result["delay_s"] = True, round(time.monotonic() - t0, 3)
                break
            time.sleep(0.5)
        result["outbox_left"] = len(list(outbox.glob("a*.msg"))) if outbox.exists() else 0
    return result
