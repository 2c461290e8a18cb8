# hal/esp32.py itself under the unix port, on recording stand-ins for machine,
# esp32 and network (tests/firmware/mpy/esp32stubs): the pins and wake sources
# it configures are those of its pin map, and while the watch idles in light
# sleep (which blocks the whole VM) every other asyncio task still gets its turn.
import sys
import asyncio
import mpytest
from mpytest import eq

for _p in sys.path:
    if _p.endswith("/mpy"):
        sys.path.insert(0, _p + "/esp32stubs")
        break
import machine  # noqa: E402  (the stand-ins' folder goes on the path first)
import esp32  # noqa: E402
import network  # noqa: E402
from hal import esp32 as hal_esp32  # noqa: E402
from app.watch import Watch  # noqa: E402
from app.modem import Modem  # noqa: E402

PINS = hal_esp32.PINS


def logged(kind):
    return [e for e in machine.LOG if e[0] == kind]


def new_board():
    del machine.LOG[:]
    machine.LEVELS.clear()
    return hal_esp32.Board()


def test_pins_come_from_the_pin_map():
    new_board()
    pins = {e[1]: e for e in logged("pin")}
    eq(pins[PINS["red"]][2:], (machine.Pin.IN, machine.Pin.PULL_UP))
    eq(pins[PINS["vibration"]][2], machine.Pin.OUT)
    eq(logged("uart")[0][2:], (PINS["modem_tx"], PINS["modem_rx"]))


def test_every_signal_has_its_own_pin_and_outputs_are_not_input_only():
    # ESP32 GPIO34-39 are inputs only (ESP32 datasheet, "Peripheral Pin
    # Configurations"): the motor, buzzer, panel and modem lines need outputs.
    outputs = ("vibration", "buzzer", "modem_tx", "modem_pwrkey", "modem_power", "modem_dtr", "audio_en",
               "tft_sck", "tft_mosi", "tft_cs", "tft_dc", "tft_bl")
    for chip in ("Generic ESP32 module with ESP32", "Generic ESP32S3 module with ESP32S3"):
        pins = hal_esp32.pin_map(chip)
        used = [v for k, v in pins.items() if k != "s3" and v is not None]
        eq(len(used), len(set(used)))
        if not pins["s3"]:
            for name in outputs:
                assert pins[name] is None or not 34 <= pins[name] <= 39, name


def test_the_modem_gets_its_supply_before_the_pwrkey_pulse():
    # LILYGO T-A7670E: BOARD_POWERON_PIN (12) high switches the modem's supply
    # on; a PWRKEY pulse (BOARD_PWRKEY_PIN 4) on an unpowered modem does nothing.
    b = new_board()
    eq(machine.LEVELS.get(PINS["modem_power"]), 0)   # off from boot, not floating
    eq(machine.LEVELS.get(PINS["modem_dtr"]), 0)     # DTR low: the modem's UART awake
    del machine.LOG[:]
    asyncio.run(b.modem_uart())
    levels = [(e[1], e[2]) for e in logged("level") if e[1] in (PINS["modem_power"], PINS["modem_pwrkey"])]
    first_key = levels.index((PINS["modem_pwrkey"], 1))
    assert (PINS["modem_power"], 1) in levels[:first_key], levels
    eq(levels[first_key:], [(PINS["modem_pwrkey"], 1), (PINS["modem_pwrkey"], 0)])


def test_light_sleep_wakes_on_the_sos_pin_low_and_the_accelerometer_high():
    b = new_board()
    b.light_sleep(30)
    eq(logged("ext0"), [("ext0", PINS["red"], esp32.WAKEUP_ALL_LOW)])
    eq(logged("ext1"), [("ext1", (PINS["accel_int"],), esp32.WAKEUP_ANY_HIGH)])
    eq(len(logged("lightsleep")), 1)
    assert logged("lightsleep")[0][1] <= 30


def test_on_an_s3_ext1_wakes_on_either_button_low_and_ext0_on_the_accelerometer():
    s3 = hal_esp32.pin_map("Generic ESP32S3 module with ESP32S3")
    eq(hal_esp32.pin_map("Generic ESP32 module with ESP32")["red"], 32)
    for name in ("red", "black", "accel_int"):
        assert s3[name] <= 21, name            # the S3's RTC GPIOs: the wake sources
    saved, hal_esp32.PINS = hal_esp32.PINS, s3
    try:
        b = new_board()
        b.light_sleep(30)
    finally:
        hal_esp32.PINS = saved
    eq(logged("ext1"), [("ext1", (s3["red"], s3["black"]), esp32.WAKEUP_ALL_LOW)])
    eq(logged("ext0"), [("ext0", s3["accel_int"], esp32.WAKEUP_ANY_HIGH)])


def test_deep_sleep_wakes_on_the_sos_pin_the_accelerometer_and_the_timer():
    b = new_board()
    b.rtc(b"1234")
    try:
        b.deep_sleep(60000)
    except SystemExit:           # the stand-in ends the program, as the chip does
        pass
    eq(logged("ext0"), [("ext0", PINS["red"], esp32.WAKEUP_ALL_LOW)])
    eq(logged("ext1"), [("ext1", (PINS["accel_int"],), esp32.WAKEUP_ANY_HIGH)])
    eq(logged("deepsleep"), [("deepsleep", 60000)])
    # The next boot: reset cause DEEPSLEEP_RESET, the source from machine.wake_reason()
    # (ext0 the button, ext1 the LIS3DH on the original ESP32), RTC memory kept.
    machine._cause[0] = machine.DEEPSLEEP_RESET
    try:
        for why, name in ((machine.EXT0_WAKE, "red"), (machine.EXT1_WAKE, "accel"), (machine.TIMER_WAKE, "timer")):
            machine._wake[0] = why
            b = new_board()
            eq((b.reset_cause(), b.rtc()[0]), ("deepsleep", name))
        eq(b.rtc()[2], b"1234")
        machine._cause[0] = machine.PWRON_RESET
        eq(new_board().rtc()[0], None)
    finally:
        machine._cause[0] = machine.PWRON_RESET


def test_a_press_during_sleep_is_an_edge_after_wake_reported_once():
    b = new_board()
    edges = []
    b.on_button(lambda name, down: edges.append((name, down)))
    machine.DURING_SLEEP.append(lambda: machine.LEVELS.update({PINS["red"]: 0}))
    b.light_sleep(20)
    eq(edges, [("red", True)])
    b._edge("red")                    # the pin interrupt, late: no second edge
    b.light_sleep(20)
    eq(edges, [("red", True)])


class IdleWatch:
    # What Watch's main loop reads of the watch: nothing needs the CPU.
    def __init__(self, board):
        self.board = board
        self.clock = board.clock
        self.wdt = None
        self.device = {}

    def idle(self):
        return True


async def idle_with_another_task():
    b = new_board()
    ticks = [0]

    async def other():
        while True:
            await asyncio.sleep_ms(20)
            ticks[0] += 1
    asyncio.create_task(other())
    loop = asyncio.create_task(Watch._main_loop(IdleWatch(b)))
    await asyncio.sleep_ms(400)
    loop.cancel()
    return ticks[0]


def test_other_tasks_run_while_the_watch_idles_in_light_sleep():
    n = asyncio.run(idle_with_another_task())
    assert n >= 10, "the other task ran %d times in 400 ms" % n
    sleeps = logged("lightsleep")
    assert sleeps, "the watch never slept"
    assert max(e[1] for e in sleeps) <= 20, sleeps   # never past the next timer


async def two_users_of_the_modem(board):
    # The radio's polls and the socket's sends, at once, through the board's one UART.
    r, w = await board.modem_uart()
    m = Modem(board.clock, r, w)
    m.start()

    async def polls():
        for _ in range(20):
            eq(await m.cmd("AT+CSQ"), ["+CSQ: 20,99", "OK"])

    async def sends():
        for _ in range(10):
            eq(await m.prompted("AT+CIPSEND=0,5", b"HELLO"), ["OK"])
    await asyncio.gather(polls(), sends())
    m._rx_task.cancel()  # asyncio.run leaves tasks behind: the next test must not inherit it
    await asyncio.sleep_ms(0)


def test_one_user_owns_the_modem_uart_at_a_time():
    del machine.UARTS[:]
    board = new_board()
    asyncio.run(two_users_of_the_modem(board))
    eq(len(machine.UARTS), 1)  # one UART to the modem, as on the board
    uart = machine.UARTS[0]
    eq(network.TAKEN, [])  # no PPP (or anything else) takes it over
    eq(uart.commands.count("AT+CSQ"), 20)
    eq(uart.payloads, [b"HELLO"] * 10)  # each payload right after its own prompt
    eq(uart.overlaps, [])  # never a command written over an unread answer


mpytest.run(globals())
