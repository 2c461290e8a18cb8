# hal/esp32.py on the bench: the board file itself, under the unix port, with
# the machine stand-in wired to hwsim's models (PERS_HWSIM_WIRES: the ST7789
# on SPI, the LIS3DH on I2C, the battery ADC, the PWM outputs). Run by
# tests/firmware/test_board_drivers.py, one step a process; it prints what the
# board saw as "key: json" lines, the test reads the models.
import sys
import json
import time
import asyncio

for _p in sys.path:
    if _p.endswith("/mpy"):
        sys.path.insert(0, _p + "/esp32stubs")
        break
from hal import esp32 as hal_esp32  # noqa: E402


def out(key, value):
    print("%s: %s" % (key, json.dumps(value)))


def step_display(text):
    # The app's own UI object, as the watch shows an alarm's text.
    from app.ui import UI
    board = hal_esp32.Board()

    async def show():
        UI(board).display(text)
    asyncio.run(show())
    out("layout", list(hal_esp32.screen.fit(text, board.panel.width - 16, board.panel.height - 36)))


def step_off():
    board = hal_esp32.Board()
    board.display("Ready")
    board.display_off()
    board.display("Help is coming")
    board.display_off()
    out("on", board.panel.on)


def step_fall():
    board = hal_esp32.Board()
    out("accel_ok", board._accel_ok)
    t0 = time.ticks_ms()
    board.light_sleep(3000)
    out("slept_ms", time.ticks_diff(time.ticks_ms(), t0))
    out("woke", board.woke)
    out("free_falls", board.free_falls)
    out("samples", board.accel_read())
    time.sleep_ms(600)      # awake till the wearer lies still: the fall goes on, INT1 latches again
    board.light_sleep(300)  # that latch ends this sleep at once, and is cleared
    out("latched_woke", board.woke)
    t1 = time.ticks_ms()
    board.light_sleep(300)  # nothing latched: a whole sleep, the timer ends it
    out("second_sleep_ms", time.ticks_diff(time.ticks_ms(), t1))
    out("second_woke", board.woke)


def step_activity():
    # The activity interrupt (generator 2, polled): still, then the fall's jolt, then
    # lying still on the floor; board.moved() is what app/welfare.py reads.
    board = hal_esp32.Board()
    t0 = time.ticks_ms()
    time.sleep_ms(900)
    out("at_rest", board.moved())
    time.sleep_ms(max(0, 1600 - time.ticks_diff(time.ticks_ms(), t0)))
    out("after_fall", board.moved())
    time.sleep_ms(800)      # the filter forgets the impact's 2.6 g in about half a second
    out("settling", board.moved())
    time.sleep_ms(1000)
    out("lying_still", board.moved())


def step_haptics():
    board = hal_esp32.Board()

    async def run():
        board.signal("sos")
        await asyncio.sleep_ms(5000)
        board.vibrate(200)
        await asyncio.sleep_ms(400)
    asyncio.run(run())
    out("battery", board.battery())
    from hal.battery import percent
    out("percent", [percent(mv) for mv in (4250, 4185, 3805, 3794, 3400, 3100)])


globals()["step_" + sys.argv[1]](*sys.argv[2:])
out("done", True)
