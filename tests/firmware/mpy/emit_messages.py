# Prints every kind of up message the firmware builds, as JSON lines
# {"kind", "payload"}, for the CPython side to validate against the contract.
import json
import mpytest
from fakeboard import FakeBoard, FakeModem, sent
from app import messages
from app.watch import Watch

w = Watch(FakeBoard(mpytest.tmpdir("emit")), install="k3x9q2ab7c1d", boot=3)
w.modem = FakeModem()
mid = w.alarm.raise_alert()
w.board.clock.wall_s = None  # no clock yet
w.modem.fix = None
w.modem.cell = None
w.alarm.raise_alert(kind="fall", trigger="fall_detector")
printed = set()


def emit():
    for kind, payload in sent(w):
        if payload["mid"] not in printed:
            printed.add(payload["mid"])
            print(json.dumps({"kind": kind, "payload": payload}))


emit()  # before the alert_ack takes the first alert out of the outbox
w.on_message("pers/v1/dev-0001/cmd", json.dumps(
    {"v": 1, "cid": "c-1", "type": "alert_ack", "ref": mid, "stage": "received"}).encode())
w.on_message("pers/v1/dev-0001/cmd", b'{"v":1,"cid":"c-2","type":"locate"}')
w.on_message("pers/v1/dev-0001/cmd", b'{"v":1,"cid":"c-3","type":"nope"}')
w.outbox.put("status", w.status_msg())
emit()
print(json.dumps({"kind": "presence", "payload": messages.presence(True, 1763780000)}))
print(json.dumps({"kind": "presence", "payload": messages.presence(False)}))
