# The two waits with a timeout that replace asyncio.Event + asyncio.wait_for_ms
# in the firmware (for the heap's sake): app.Wake (one waiter, woken by set())
# and hal.wait_for_ms (any awaitable, one timer task). Their contract is that
# of what they replace: a set() before the wait counts, a timeout is told
# apart from a wake-up and from a cancellation by someone else.
import asyncio
import time
import mpytest
from mpytest import eq
import hal
from app import Wake


class Clock:
    def sleep_ms(self, ms):
        return asyncio.sleep_ms(ms)


def took(t0):
    return time.ticks_diff(time.ticks_ms(), t0)


async def wake_scenario():
    w = Wake(Clock())
    t0 = time.ticks_ms()
    eq(await w.wait_ms(50), False)           # nobody sets it: a timeout
    assert took(t0) >= 45, took(t0)
    w.set()                                  # set with nobody waiting: kept
    t0 = time.ticks_ms()
    eq(await w.wait_ms(1000), True)
    assert took(t0) < 100, took(t0)
    w.set()
    w.clear()                                # ... until cleared
    eq(await w.wait_ms(20), False)

    async def setter():
        await asyncio.sleep_ms(30)
        w.set()
    asyncio.create_task(setter())
    t0 = time.ticks_ms()
    eq(await w.wait_ms(2000), True)          # woken in the middle of the wait
    assert took(t0) < 500, took(t0)
    eq(w.pending, False)
    eq(await w.wait_ms(20), False)           # that wake-up is used up

    async def waiter():
        await w.wait_ms(2000)
    t = asyncio.create_task(waiter())
    await asyncio.sleep_ms(20)
    t.cancel()                               # a cancellation stays one
    try:
        await t
        raise AssertionError("not cancelled")
    except asyncio.CancelledError:
        pass


def test_wake_keeps_an_early_set_times_out_and_passes_cancellations_on():
    asyncio.run(wake_scenario())


async def value_after(ms, value):
    await asyncio.sleep_ms(ms)
    return value


async def wait_for_scenario():
    eq(await hal.wait_for_ms(value_after(10, 7), 1000), 7)
    t0 = time.ticks_ms()
    try:
        await hal.wait_for_ms(value_after(1000, 7), 30)
        raise AssertionError("no timeout")
    except asyncio.TimeoutError:
        pass
    assert took(t0) < 500, took(t0)
    ev = asyncio.Event()

    async def later():
        await asyncio.sleep_ms(20)
        ev.set()
    asyncio.create_task(later())
    eq(await hal.wait_for_ms(ev.wait(), 1000), True)

    async def waiter():
        await hal.wait_for_ms(value_after(1000, 7), 500)
    t = asyncio.create_task(waiter())
    await asyncio.sleep_ms(20)
    t.cancel()                               # not a timeout: the cancellation goes on
    try:
        await t
        raise AssertionError("not cancelled")
    except asyncio.CancelledError:
        pass
    await asyncio.sleep_ms(600)              # and its timer cancels nobody later


def test_hal_wait_for_ms_returns_times_out_and_passes_cancellations_on():
    asyncio.run(wait_for_scenario())


async def race_scenario():
    # Wake-ups landing on timeouts, many times over: every wait ends as one or
    # the other, never with a stray CancelledError.
    w = Wake(Clock())
    counts = {"set": 0, "timeout": 0}

    async def setter():
        for i in range(300):
            await asyncio.sleep_ms(i % 4)
            w.set()

    s = asyncio.create_task(setter())
    for i in range(300):
        if await w.wait_ms(i % 3):
            counts["set"] += 1
        else:
            counts["timeout"] += 1
    s.cancel()
    eq(counts["set"] + counts["timeout"], 300)
    assert counts["set"] and counts["timeout"], counts


def test_wake_races_between_set_and_timeout_end_cleanly():
    asyncio.run(race_scenario())


mpytest.run(globals())
