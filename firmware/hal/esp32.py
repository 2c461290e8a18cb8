# The real board: ESP32 + SIMCom LTE modem (UART) + GNSS in the modem.
# Pin numbers are the board's (pin_map); a different PCB changes only pin_map.
import asyncio
import sys
import time
import hal
import machine
from hal.max30102 import MAX30102



def pin_map(chip):
    # chip: the build's board name (os.uname().machine, the same text as
    # sys.implementation._machine), e.g. "Generic ESP32S3 module with ESP32S3".
    # Only the map in use is built: each dict is heap for good.
    if "ESP32S3" in chip:
        # ESP32-S3: wake pins must be RTC GPIOs (0-21); not the strapping pins
        # (0, 3, 45, 46), the USB pair (19, 20) or the flash/PSRAM pins (26-37).
        # The battery on ADC1 (GPIO1-10): ADC2 is unusable beside a radio.
        # A proposed PCB's map: check it against the schematic before flashing.
        return {"red": 5, "black": 6, "vibration": 15, "modem_tx": 17, "modem_rx": 18,
                "modem_pwrkey": 16, "batt_adc": 4, "i2c_scl": 9, "i2c_sda": 8, "accel_int": 7,
                "audio_en": 14, "s3": 1}
    # The original ESP32 (LILYGO T-A7670E-class reference board).
    return {"red": 32, "black": 35, "vibration": 13, "modem_tx": 27, "modem_rx": 26,
            "modem_pwrkey": 4, "batt_adc": 34, "i2c_scl": 22, "i2c_sda": 21, "accel_int": 39,
            "audio_en": 25, "s3": 0}


PINS = pin_map(getattr(sys.implementation, "_machine", ""))
ACCEL_ADDR = 0x19   # LIS3DH, SA0 high
HR_ADDR = 0x57      # MAX30102
UNIX_OFFSET = 946684800  # MicroPython's epoch on ESP32 is 2000-01-01
FLASH_DIR = "/data"
_MIN_SLEEP_MS = 2  # shorter sleeps cost more to enter and leave than they save

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

    def sleep_ms(self, ms):
        # asyncio's own awaitable, not a coroutine around it: every task that
        # sleeps would hold one more frame in the heap. Await it at once (it is
        # one object that asyncio reuses for every sleep).
        return asyncio.sleep_ms(ms)

    def wait_for_ms(self, aw, ms):
        return hal.wait_for_ms(aw, ms)

    def set_wall(self, unix_s):
        # The RTC keeps UTC (app/netclock.py keeps the zone); it runs through
        # light and deep sleep and resets, and is lost only at power-off.
        t = time.gmtime(unix_s - UNIX_OFFSET)
        machine.RTC().datetime((t[0], t[1], t[2], t[6], t[3], t[4], t[5], 0))

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
        self.text = ""
        self.i2c = machine.I2C(0, scl=machine.Pin(PINS["i2c_scl"]), sda=machine.Pin(PINS["i2c_sda"]), freq=400000)
        self._audio = machine.Pin(PINS["audio_en"], machine.Pin.OUT, value=0)
        self.accel_hz = 50
        self._accel_ok = self._accel_init()
        self._hr = MAX30102(self.i2c, self.clock, HR_ADDR)
        if not self._hr.init():
            print("heart-rate sensor not found")
        self._on_button = None
        self._uart_writer = None

    async def start(self):
        pass

    def button(self, name):
        pin = self._red if name == "red" else self._black
        return pin.value() == 0  # buttons pull the line low

    def on_button(self, callback):
        # Edges from pin interrupts, handed to the app outside the interrupt.
        import micropython
        self._on_button = callback
        self._levels = {"red": self.button("red"), "black": self.button("black")}
        for name, pin in (("red", self._red), ("black", self._black)):
            pin.irq(lambda p, n=name: micropython.schedule(self._edge, n),
                    machine.Pin.IRQ_FALLING | machine.Pin.IRQ_RISING)

    def _edge(self, name):
        # From the pin interrupt and after every light sleep: only a level
        # that changed since the last report is an edge (each one reported once).
        down = self.button(name)
        if self._on_button and self._levels[name] != down:
            self._levels[name] = down
            self._on_button(name, down)

    def _accel_init(self):
        try:
            self.i2c.writeto_mem(ACCEL_ADDR, 0x20, b"\x47")  # CTRL_REG1: 50 Hz, x/y/z on
            self.i2c.writeto_mem(ACCEL_ADDR, 0x23, b"\x18")  # CTRL_REG4: +-4 g, high resolution
            self.i2c.writeto_mem(ACCEL_ADDR, 0x24, b"\x40")  # CTRL_REG5: FIFO on
            self.i2c.writeto_mem(ACCEL_ADDR, 0x2E, b"\x80")  # FIFO_CTRL: stream mode
            return True
        except OSError:
            print("accelerometer not found")
            return False

    def accel_read(self):
        # Drains the LIS3DH FIFO: [[x, y, z] milli-g, ...]
        if not self._accel_ok:
            return []
        n = self.i2c.readfrom_mem(ACCEL_ADDR, 0x2F, 1)[0] & 0x1F  # FIFO_SRC: samples waiting
        out = []
        for _ in range(n):
            raw = self.i2c.readfrom_mem(ACCEL_ADDR, 0x28 | 0x80, 6)
            out.append([((raw[i + 1] << 8 | raw[i]) - (65536 if raw[i + 1] & 0x80 else 0)) >> 4 << 1
                        for i in (0, 2, 4)])  # 12-bit left-justified, 2 mg per digit at +-4 g
        return out

    async def heart_rate(self):
        # Beats per minute from the MAX30102 (seconds of sampling), or None:
        # no sensor, nothing on the skin, no clear beat. Never a guess.
        return await self._hr.heart_rate()

    def display_off(self):
        self.text = ""

    def audio(self, state):
        self._audio.value(1 if state == "on" else 0)

    def light_sleep(self, ms):
        # machine.lightsleep stops the whole VM: no task runs until it returns.
        # So the sleep ends at asyncio's next timer at the latest
        # (hal.sleep_budget), and the caller yields to asyncio after it. The
        # SOS button (low) and the accelerometer interrupt (the LIS3DH INT1 is
        # active high) end it early. The original ESP32's ext1 wakes only on
        # "all low" or "any high": there the button takes ext0.
        ms = hal.sleep_budget(ms)
        if ms < _MIN_SLEEP_MS:
            return
        import esp32
        accel = machine.Pin(PINS["accel_int"])
        if PINS["s3"]:
            # The S3's ext1 wakes on any pin low (ESP-IDF's ESP_EXT1_WAKEUP_ANY_LOW,
            # the value MicroPython names WAKEUP_ALL_LOW): both buttons; ext0
            # takes the accelerometer's active-high interrupt.
            esp32.wake_on_ext1(pins=(self._red, self._black), level=esp32.WAKEUP_ALL_LOW)
            esp32.wake_on_ext0(pin=accel, level=esp32.WAKEUP_ANY_HIGH)
        else:
            esp32.wake_on_ext0(pin=self._red, level=esp32.WAKEUP_ALL_LOW)
            esp32.wake_on_ext1(pins=(accel,), level=esp32.WAKEUP_ANY_HIGH)
        machine.lightsleep(ms)
        # An edge during light sleep raises no pin interrupt (the GPIO matrix
        # is asleep); the level is there after wake: a changed level is the edge.
        self._edge("red")
        self._edge("black")

    def deep_sleep(self, ms):
        # A wake is a reboot (reset cause "deepsleep"): the SOS button (RTC
        # GPIO, low) or the timer. main.py and the app run again from the top.
        import esp32
        if PINS["s3"]:
            esp32.wake_on_ext1(pins=(self._red,), level=esp32.WAKEUP_ALL_LOW)
        else:
            esp32.wake_on_ext0(pin=self._red, level=esp32.WAKEUP_ALL_LOW)
        machine.deepsleep(ms)

    def display(self, text):
        # The reference board has no screen driver yet: the text goes to the console.
        self.text = text
        print("display:", text)

    def vibrate(self, ms):
        # A task per buzz, not a poller: a task that wakes every few ms would
        # cut every light sleep that short.
        self._vib.value(1)
        self._vib_until = time.ticks_add(time.ticks_ms(), ms)
        asyncio.create_task(self._vibration_off(ms))

    async def _vibration_off(self, ms):
        await asyncio.sleep_ms(ms)
        if self._vib_until is not None and time.ticks_diff(time.ticks_ms(), self._vib_until) >= 0:
            self._vib.value(0)
            self._vib_until = None

    def battery(self):
        mv = self._adc.read_uv() * 2 // 1000  # 1:2 divider
        pct = max(0, min(100, (mv - 3300) * 100 // (4150 - 3300)))
        return {"pct": pct, "mv": mv}

    def watchdog(self, timeout_ms):
        return Watchdog(timeout_ms)

    def reset_cause(self):
        return _CAUSES.get(machine.reset_cause(), "unknown")

    def random_bytes(self, n):
        # os.urandom (in hal.random_bytes) reads the ESP32's hardware RNG
        # (esp_random). Physical noise enters its state only while the RF
        # subsystem (Wi-Fi, Bluetooth) or the SAR ADC entropy source is on
        # (ESP-IDF, "Random Number Generation"). This watch never turns the
        # ESP32's own radio on (the LTE modem is another chip, on a UART), and
        # MicroPython offers no bootloader_random_enable(): at the first boot
        # the RNG holds the noise the second-stage bootloader mixed in while it
        # ran (SAR ADC on an internal reference), and gives a pseudo-random
        # sequence from that state. ESP-IDF calls that entropy enough for keys
        # made at a first boot, but puts no figure on it, and the RNG state is
        # small. So hashed in as well (SHA-256): the microsecond tick (the first
        # boot after an erase formats the file system first, which takes a
        # varying time), the low bits of battery ADC readings (noise), and the
        # chip's factory id (two boards never hash the same input, even from
        # the same RNG state). Called once per flash file system, at boot,
        # before the modem is powered.
        noise = bytearray(16)
        for i in range(16):
            noise[i] = self._adc.read_u16() & 0xFF
        return hal.random_bytes(n, bytes(machine.unique_id()) + bytes(noise))

    async def modem_uart(self):
        off = getattr(self, "_pwrkey_off_at", None)
        if off is not None:
            # the power-off pulse (2.6 s) must end, and the modem settle, before a power-on pulse
            await asyncio.sleep_ms(max(0, 4600 - time.ticks_diff(time.ticks_ms(), off)))
        pwr = machine.Pin(PINS["modem_pwrkey"], machine.Pin.OUT, value=0)
        pwr.value(1)
        await asyncio.sleep_ms(600)  # PWRKEY pulse that switches the modem on
        pwr.value(0)
        self._uart_writer = asyncio.StreamWriter(self.uart, {})
        return asyncio.StreamReader(self.uart), self._uart_writer

    def modem_power_off(self, writer, pulse=False):
        # AT+CPOF already switched it off unless pulse: then PWRKEY is held low
        # for 2.6 s, the power-off pulse of the A7670 and SIM7600 hardware design
        # manuals (at least 2.5 s), released by a one-shot timer so the loop runs on.
        self._uart_writer = None
        if pulse:
            self._pwrkey_off_at = time.ticks_ms()
            pwr = machine.Pin(PINS["modem_pwrkey"], machine.Pin.OUT, value=1)
            machine.Timer(1).init(mode=machine.Timer.ONE_SHOT, period=2600, callback=lambda t: pwr.value(0))

    def reboot(self):
        machine.reset()

    def power_off(self):
        # Deep sleep with no timer: only a reset (the charger's) wakes the board.
        machine.deepsleep()
