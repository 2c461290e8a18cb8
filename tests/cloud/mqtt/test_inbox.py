"""The ingest inbox (cloud/mqtt/bridge.py): one device cannot starve another, and
the age of the oldest message not yet committed is known (it drives /healthz)."""
from types import SimpleNamespace

from cloud.mqtt.bridge import Inbox


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def msg(device, n=0):
    return SimpleNamespace(topic=f"pers/v1/{device}/alert", n=n)


def test_a_flooding_device_gets_one_message_per_turn_and_the_others_go_between():
    box = Inbox(bulk_max=10, clock=Clock())
    for i in range(3000):
        box.put_urgent(msg("stuck", i))
    victim = msg("jeanne")
    box.put_urgent(victim)
    first, _ = box.take(batch_max=500)
    second, _ = box.take(batch_max=500)
    # One per device per turn, the shortest queue first: the victim's SOS waits for none
    # of the 3,000 (only for the transaction in progress when it came).
    assert [m.topic for m in first] == ["pers/v1/jeanne/alert", "pers/v1/stuck/alert"]
    assert first[0] is victim and first[1].n == 0
    assert [m.n for m in second] == [1]
    # A device arriving later still gets its turn right after the current one.
    late = msg("paul")
    box.put_urgent(late)
    third, _ = box.take(batch_max=500)
    assert [m.topic.split("/")[2] for m in third] == ["paul", "stuck"]
    # The flood itself is kept whole, in order.
    rest = []
    while box.depth()[0]:
        rest += box.take(batch_max=500)[0]
    assert [m.n for m in rest] == list(range(3, 3000))


def test_the_oldest_message_not_yet_committed_is_measured_until_done():
    clock = Clock()
    box = Inbox(bulk_max=10, clock=clock)
    assert box.oldest_wait() == 0.0
    box.put_bulk(["loc0", "loc1"], wait_s=1)
    clock.t += 5
    box.put_urgent(msg("w1"))
    clock.t += 2
    assert box.oldest_wait() == 7.0           # the bulk reports have waited 7 s
    urgent, _ = box.take(batch_max=10)
    assert box.oldest_wait() == 7.0           # still: the bulk lane's reports
    box.done()
    _, bulk = box.take(batch_max=1)
    assert bulk == ["loc0"]
    clock.t += 60                             # the worker is stuck on loc0's commit
    assert box.oldest_wait() == 67.0
    box.done()
    assert box.oldest_wait() == 67.0          # loc1 arrived with loc0, and still waits
    box.take(batch_max=10)
    box.done()
    assert box.oldest_wait() == 0.0
