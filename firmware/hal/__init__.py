# The hardware abstraction: the only door from the app to the hardware.
# Every board offers the same small interface:
#   button(name) -> bool                held down now ("red" SOS, "black")
#   display(text), vibrate(ms)
#   clock: ticks_ms(), ticks_diff(a, b), ticks_add(t, ms), sleep_ms(ms) and
#          wait_for_ms(awaitable, ms) (both awaitable), wall() -> unix seconds or None
#          (None until set_wall(unix_s): app/netclock.py)
#   watchdog(timeout_ms) -> object with feed() and hold()
#   reset_cause() -> str, battery() -> {"pct", "mv"}, flash_dir
#   random_bytes(n) -> bytes            unpredictable, n <= 32 (random_bytes below)
#   async start()                       background tasks the board needs
#   light_sleep(ms)                     blocks the whole VM (no task runs) until ms,
#                                       asyncio's next timer or a wake source
#   async modem_uart() -> (reader, writer)   the AT byte stream, and the only path
#                                       to the network (app/netsock.py: the modem's TCP stack)
#   baro_read() -> [Pa x 10, ...] | None     the barometer's FIFO since the last call,
#                                       oldest first, at baro_hz (Hz); None: no barometer
import asyncio
import sys


async def _timer(task, ms):
    await asyncio.sleep_ms(ms)
    task.cancel()


async def wait_for_ms(aw, ms):
    # asyncio.wait_for_ms without its two extra tasks (a runner and aw's own):
    # each of asyncio's waits holds about 1 KB of heap (64-bit), 0.4 KB here.
    # A timer task cancels this one when ms pass, and is done from then on.
    timer = asyncio.create_task(_timer(asyncio.current_task(), ms))
    try:
        return await aw
    except asyncio.CancelledError:
        if timer.done():
            raise asyncio.TimeoutError
        raise
    finally:
        timer.cancel()


def sleep_budget(ms):
    # How long the CPU may sleep (ms on asyncio's clock): ms, cut to the next
    # task asyncio has timed (a sleep, a hold timer, a timeout). MicroPython's
    # run queue is a pairing heap keyed on wake-up ticks; peek() is its head.
    # It is asyncio's private part, so guarded: without it, no sleep at all
    # (power lost, but never a task starved).
    try:
        from asyncio import core
        head = core._task_queue.peek()
    except (ImportError, AttributeError):
        return 0
    if head is None:
        return ms
    import time
    return max(0, min(ms, time.ticks_diff(head.ph_key, time.ticks_ms())))


def random_bytes(n, extra=b""):
    # Every board's random_bytes comes here, the simulated one too: the source
    # is os.urandom (on the ESP32 its hardware RNG, see hal/esp32.py for what
    # that holds at first boot; on the unix port the kernel's), hashed with the
    # microsecond tick and what the board adds (extra). Used once per flash file
    # system (the installation id, app/flash.py): the imports stay out of the
    # heap on every other boot.
    import hashlib
    import os
    import time
    h = hashlib.sha256(os.urandom(32))
    h.update(extra)
    h.update(str(time.ticks_us()).encode())
    return h.digest()[:n]


def board():
    if sys.platform == "esp32":
        from hal.esp32 import Board
    else:
        from hal.sim import Board
    return Board()


def find_barometer(i2c):
    # (driver, Hz) of a BMP390 on the bus, or (None, 0). Its CHIP_ID is read at
    # both addresses first, so a board without one never imports the driver.
    for addr in (0x77, 0x76):  # BMP390: SDO high, SDO low
        try:
            if i2c.readfrom_mem(addr, 0x00, 1)[0] != 0x60:
                continue
        except OSError:
            continue
        from hal.bmp390 import BMP390, HZ
        baro = BMP390(i2c, addr)
        if baro.init():
            return baro, HZ
        print("barometer not configured")
    return None, 0


def baro_read(baro):
    if baro is None:
        return None
    try:
        return baro.drain()
    except OSError:
        return []
