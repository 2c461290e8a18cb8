# When the network is there but the cloud is not (no data bearer, a dead APN,
# the cloud unreachable): the alarm goes by SMS to the call centre's number and
# the watch calls the centre. Voice and SMS need no data. Loaded only when it
# is needed (app/sos.py), so it costs no heap the rest of the time.
from micropython import const

_SMS_MAX = const(160)  # one GSM 7-bit text; the text below is ASCII only


def sms_text(device_id, s, ref):
    # What an operator reading a phone needs: who, what, where, battery, and the
    # alert's mid, so the centre can join this to the case once data is back.
    loc = s.get("loc")
    cell = s.get("cell")
    if loc and loc.get("lat") is not None and loc.get("lon") is not None:
        where = "%.5f,%.5f" % (loc["lat"], loc["lon"])
        if loc.get("acc") is not None:
            where += " +-%dm" % loc["acc"]
    elif cell:
        where = "cell %s-%s lac %s cid %s" % (cell.get("mcc"), cell.get("mnc"), cell.get("lac"), cell.get("cid"))
    else:
        where = "position unknown"
    batt = (s.get("batt") or {}).get("pct")
    text = "ALARM watch %s at %s batt %s%% ref %s" % (
        device_id, where, "?" if batt is None else batt, ref)
    return "".join(c if " " <= c <= "~" else "?" for c in text)[:_SMS_MAX]


async def alarm_by_sms(watch, number):
    # Once per alarm: the SMS first (seconds), then the call (the centre hears the wearer).
    m = watch.radio.modem
    a = watch.alarm
    sent = False
    try:
        if m is not None and m.ready:
            text = sms_text(watch.device["id"], a.snapshot(), a.current_ref())
            sent = await m.send_sms(number, text)
    except Exception as e:  # an odd field must never cost the call that follows
        print("alarm: SMS failed", repr(e))
    print("alarm: no cloud, SMS to", number, "sent" if sent else "failed")
    watch.ui.show("Alarm sent by SMS - calling centre" if sent else "Calling centre", pin=True)
    await watch._calls().dial(number)
