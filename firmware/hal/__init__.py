# The hardware abstraction: the only door from the app to the hardware.
# Every board offers the same small interface:
#   button(name) -> bool                held down now ("red" SOS, "black")
#   display(text), vibrate(ms)
#   clock: ticks_ms(), ticks_diff(a, b), ticks_add(t, ms), sleep_ms(ms) and
#          wait_for_ms(awaitable, ms) (both awaitable), wall() -> unix seconds or None
#   watchdog(timeout_ms) -> object with feed() and hold()
#   reset_cause() -> str, battery() -> {"pct", "mv"}, flash_dir
#   random_bytes(n) -> bytes            unpredictable, n <= 32 (random_bytes below)
#   async start()                       background tasks the board needs
#   async modem_uart() -> (reader, writer)   the AT byte stream, and the only path
#                                       to the network (app/netsock.py: the modem's TCP stack)
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
