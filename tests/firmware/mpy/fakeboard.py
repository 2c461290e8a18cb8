# A board without hardware for unit tests: a settable clock, recorded outputs.
import json
from app import flash


class FakeClock:
    def __init__(self):
        self.now = 0
        self.wall_s = 1763780000

    def ticks_ms(self):
        return self.now

    def ticks_diff(self, a, b):
        return a - b

    def ticks_add(self, t, ms):
        return t + ms

    async def sleep_ms(self, ms):
        self.now += ms

    def wall(self):
        return self.wall_s

    def set_wall(self, t):
        self.wall_s = t


class FakeModem:
    cell = {"mcc": 208, "mnc": 1, "lac": 12345, "cid": 67890, "rssi": -85, "rat": "LTE", "op": "20801"}
    rssi = -85
    fix = {"lat": 45.764, "lon": 4.8357, "acc": 5.0, "src": "gnss", "ts": 1763779990, "sats": 9}
    age = 1000

    def fix_age_ms(self):
        return self.age


class FakeBoard:
    def __init__(self, flash_dir, device_id="dev-0001"):
        self.flash_dir = flash_dir
        self.clock = FakeClock()
        self.shown = []
        self.buzz = []
        self.signals = []
        flash.makedirs(flash_dir)
        flash.write_json(flash_dir + "/device.json", {"id": device_id, "secret": "s",
                                                      "broker_host": "127.0.0.1", "broker_port": 1})

    def display(self, text):
        self.shown.append(text)

    def vibrate(self, ms):
        self.buzz.append(ms)

    def signal(self, name):
        self.signals.append(name)

    def battery(self):
        return {"pct": 64, "mv": 3850}


def sent(watch):
    # The outbox content as (kind, payload dict), sending order.
    return [(k, json.loads(p)) for _, k, p in watch.outbox.items()]
