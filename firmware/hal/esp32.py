# The real board: ESP32 + SIMCom LTE modem (UART) + GNSS in the modem.
# Pin numbers are the reference board's; a different PCB changes only PINS.
import asyncio
import time
import machine
import network

PINS = {"red": 0, "black": 35, "vibration": 13, "modem_tx": 27, "modem_rx": 26,
        "modem_pwrkey": 4, "batt_adc": 34}
UNIX_OFFSET = 946684800  # MicroPython's epoch on ESP32 is 2000-01-01
FLASH_DIR = "/data"

_CAUSES = {
    machine.PWRON_RESET: "power_on",
    machine.HARD_RESET: "hard",
    machine.WDT_RESET: "wdt",
    machine.DEEPSLEEP_RESET: "deepsleep",
    machine.SOFT_RESET: "soft",
}


class Clock:
    def ticks_ms(self):
        return time.ticks_ms()

    def ticks_diff(self, a, b):
        return time.ticks_diff(a, b)

    def ticks_add(self, t, ms):
        return time.ticks_add(t, ms)

    async def sleep_ms(self, ms):
        await asyncio.sleep_ms(ms)

    async def wait_for_ms(self, aw, ms):
        return await asyncio.wait_for_ms(aw, ms)

    def wall(self):
        t = time.time()
        # An RTC still near its epoch has never been set (no network time yet).
        return t + UNIX_OFFSET if t > 24 * 365 * 86400 else None


class Watchdog:
    def __init__(self, timeout_ms):
        self._wdt = machine.WDT(timeout=timeout_ms)
        self._timer = None

    def feed(self):
        self._wdt.feed()

    def hold(self):
        # Safe mode: an ESP32 watchdog cannot be stopped, so a timer feeds it
        # and the USB REPL stays usable.
        self._timer = machine.Timer(0)
        self._timer.init(period=1000, mode=machine.Timer.PERIODIC, callback=lambda t: self._wdt.feed())


class Link:
    # The data path: PPP over the modem UART (the modem in data mode).
    def __init__(self, board):
        self.board = board
        self.ppp = None

    async def open(self, host, port):
        if self.ppp is None or not self.ppp.isconnected():
            uart = self.board.uart
            uart.write(b"ATD*99#\r\n")  # enter data mode; the modem answers CONNECT
            await asyncio.sleep_ms(1000)
            self.ppp = network.PPP(uart)
            self.ppp.active(True)
            self.ppp.connect()
            for _ in range(300):
                if self.ppp.isconnected():
                    break
                await asyncio.sleep_ms(100)
            else:
                raise OSError("ppp did not come up")
        return await asyncio.open_connection(host, port)


class Board:
    def __init__(self):
        self.clock = Clock()
        self.flash_dir = FLASH_DIR
        self._red = machine.Pin(PINS["red"], machine.Pin.IN, machine.Pin.PULL_UP)
        self._black = machine.Pin(PINS["black"], machine.Pin.IN)
        self._vib = machine.Pin(PINS["vibration"], machine.Pin.OUT, value=0)
        self._vib_until = None
        self._adc = machine.ADC(machine.Pin(PINS["batt_adc"]))
        self._adc.atten(machine.ADC.ATTN_11DB)
        self.uart = machine.UART(1, 115200, tx=PINS["modem_tx"], rx=PINS["modem_rx"],
                                 timeout=0, rxbuf=2048)
        self.link = Link(self)
        self.text = ""

    async def start(self):
        asyncio.create_task(self._vibration())

    def button(self, name):
        pin = self._red if name == "red" else self._black
        return pin.value() == 0  # buttons pull the line low

    def display(self, text):
        # The reference board has no screen driver yet: the text goes to the console.
        self.text = text
        print("display:", text)

    def vibrate(self, ms):
        self._vib.value(1)
        self._vib_until = time.ticks_add(time.ticks_ms(), ms)

    async def _vibration(self):
        while True:
            if self._vib_until is not None and time.ticks_diff(time.ticks_ms(), self._vib_until) >= 0:
                self._vib.value(0)
                self._vib_until = None
            await asyncio.sleep_ms(50)

    def battery(self):
        mv = self._adc.read_uv() * 2 // 1000  # 1:2 divider
        pct = max(0, min(100, (mv - 3300) * 100 // (4150 - 3300)))
        return {"pct": pct, "mv": mv}

    def watchdog(self, timeout_ms):
        return Watchdog(timeout_ms)

    def reset_cause(self):
        return _CAUSES.get(machine.reset_cause(), "unknown")

    async def modem_uart(self):
        pwr = machine.Pin(PINS["modem_pwrkey"], machine.Pin.OUT, value=0)
        pwr.value(1)
        await asyncio.sleep_ms(600)  # PWRKEY pulse that switches the modem on
        pwr.value(0)
        return asyncio.StreamReader(self.uart), asyncio.StreamWriter(self.uart, {})

    def reboot(self):
        machine.reset()
