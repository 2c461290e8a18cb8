# The real board: ESP32 + SIMCom LTE modem (UART) + GNSS in the modem, an
# ST7789 panel (SPI), a LIS3DH accelerometer and a MAX30102 pulse sensor (I2C),
# a vibration motor and a buzzer (PWM), the battery on an ADC pin. A BMP390
# barometer on the same I2C bus is optional (hal/bmp390.py, loaded only if found).
# Pin numbers are the board's (pin_map); a different PCB changes only pin_map.
import asyncio
import sys
import time
import hal
import machine
from hal import haptics, screen
from hal.battery import Gauge
from hal.lis3dh import LIS3DH
from hal.max30102 import MAX30102
from hal.st7789 import ST7789


def pin_map(chip):
    # chip: the build's board name (os.uname().machine, the same text as
    # sys.implementation._machine), e.g. "Generic ESP32S3 module with ESP32S3".
    # Only the map in use is built: each dict is heap for good.
    if "ESP32S3" in chip:
        # ESP32-S3: wake pins must be RTC GPIOs (0-21); not the strapping pins
        # (0, 3, 45, 46), the USB pair (19, 20) or the flash/PSRAM pins (26-37).
        # The battery on ADC1 (GPIO1-10): ADC2 is unusable beside a radio.
        # A proposed PCB's map: check it against the schematic before flashing.
        # The panel on SPI2's own pins (10-13), so the bus runs at 40 MHz.
        return {"red": 5, "black": 6, "vibration": 15, "modem_tx": 17, "modem_rx": 18,
                "modem_pwrkey": 16, "modem_power": None, "modem_dtr": None, "batt_adc": 4, "i2c_scl": 9,
                "i2c_sda": 8, "accel_int": 7,
                "audio_en": 14, "tft_sck": 12, "tft_mosi": 11, "tft_cs": 10, "tft_dc": 13,
                "tft_bl": 21, "buzzer": 38, "s3": 1}
    # The original ESP32: LILYGO T-A7670E. The board's own wiring, from
    # LILYGO's LilyGO-T-A76XX examples/*/utilities.h (LILYGO_T_A7670):
    # MODEM_TX_PIN 26 (the ESP32's TX, the modem's RXD), MODEM_RX_PIN 27,
    # BOARD_PWRKEY_PIN 4, BOARD_POWERON_PIN 12 (high: the modem's supply on;
    # left low the modem never starts), MODEM_DTR_PIN 25 (held low: the
    # modem's UART stays awake), MODEM_RING_PIN 33 and MODEM_RESET_PIN 5
    # (left alone), BOARD_BAT_ADC_PIN 35 (100k/100k). No watch signal goes
    # on those. The SD slot (MISO 2, MOSI 15, SCK 14, CS 13) stays empty:
    # its lines are the only free outputs left. The panel's chip select
    # takes the card's chip select (13: a select line idles high, as both
    # want), the motor the clock (14), backlight and buzzer 15 and 2. The
    # panel on VSPI's own pins (18, 23) with D/C on 19. utilities.h names no
    # audio pin: the modem drives its speaker itself (audio_en None).
    # The buttons on RTC GPIOs (ext0/ext1 wake): red 32, black on input-only
    # 34 (external pull-up), the LIS3DH's INT1 on input-only 39.
    return {"red": 32, "black": 34, "vibration": 14, "modem_tx": 26, "modem_rx": 27,
            "modem_pwrkey": 4, "modem_power": 12, "modem_dtr": 25, "batt_adc": 35, "i2c_scl": 22,
            "i2c_sda": 21, "accel_int": 39, "audio_en": None, "tft_sck": 18, "tft_mosi": 23, "tft_cs": 13,
            "tft_dc": 19, "tft_bl": 15, "buzzer": 2, "s3": 0}


PINS = pin_map(getattr(sys.implementation, "_machine", ""))
ACCEL_ADDR = 0x19   # LIS3DH, SA0 high
HR_ADDR = 0x57      # MAX30102
PANEL = (240, 240, 0, 0)  # width, height, column and row offset (240x280 panels: 240, 280, 0, 20)
SPI_HZ = 40000000   # the ST7789V takes 62 MHz (16 ns write cycle); the ESP32 gives 40 on its own pins
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
    # The barometer's driver and rate when one is fitted: class defaults, so a board
    # without one holds no attribute of its own for them (heap).
    _baro = None
    baro_hz = 0

    def __init__(self):
        self.clock = Clock()
        self.flash_dir = FLASH_DIR
        self._red = machine.Pin(PINS["red"], machine.Pin.IN, machine.Pin.PULL_UP)
        self._black = machine.Pin(PINS["black"], machine.Pin.IN)
        out = machine.Pin.OUT
        self._motor = haptics.Pulser(machine.PWM(machine.Pin(PINS["vibration"], out, value=0), freq=haptics.MOTOR_HZ,
                                                 duty_u16=0), haptics.MOTOR_HZ, haptics.MOTOR_DUTY)
        self._buzzer = haptics.Pulser(machine.PWM(machine.Pin(PINS["buzzer"], out, value=0), freq=2000, duty_u16=0),
                                      2000, haptics.BUZZER_DUTY)
        self._adc = machine.ADC(machine.Pin(PINS["batt_adc"]))
        self._adc.atten(machine.ADC.ATTN_11DB)
        self._gauge = Gauge(self._adc)
        spi = machine.SPI(1 if PINS["s3"] else 2, baudrate=SPI_HZ, polarity=0, phase=0,
                          sck=machine.Pin(PINS["tft_sck"]), mosi=machine.Pin(PINS["tft_mosi"]))
        self.panel = ST7789(spi, machine.Pin(PINS["tft_dc"], out, value=1), machine.Pin(PINS["tft_cs"], out, value=1),
                            machine.Pin(PINS["tft_bl"], out, value=0), *PANEL)
        self.panel.init()
        self.woke = None  # what ended the last light sleep: "accel", "red" or None (the timer)
        self.uart = machine.UART(1, 115200, tx=PINS["modem_tx"], rx=PINS["modem_rx"],
                                 timeout=0, rxbuf=2048)
        self.text = ""
        self.i2c = machine.I2C(0, scl=machine.Pin(PINS["i2c_scl"]), sda=machine.Pin(PINS["i2c_sda"]), freq=400000)
        self._audio = None if PINS["audio_en"] is None else machine.Pin(PINS["audio_en"], machine.Pin.OUT, value=0)
        # The modem's supply off and DTR low (awake) until the radio wants it
        # (modem_uart): a pin left floating is neither.
        self._modem_power = None if PINS["modem_power"] is None else machine.Pin(PINS["modem_power"],
                                                                                   machine.Pin.OUT, value=0)
        if PINS["modem_dtr"] is not None:
            machine.Pin(PINS["modem_dtr"], machine.Pin.OUT, value=0)
        self.accel_hz = 50
        self.accel = LIS3DH(self.i2c, ACCEL_ADDR)
        self._accel_ok = self.accel.init(self.accel_hz)
        if not self._accel_ok:
            print("accelerometer not found")
        self.free_falls = 0
        self._hr = MAX30102(self.i2c, self.clock, HR_ADDR)
        if not self._hr.init():
            print("heart-rate sensor not found")
        baro, hz = hal.find_barometer(self.i2c)
        if baro is not None:
            self._baro, self.baro_hz = baro, hz
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

    def baro_read(self):
        # The pressures the barometer's FIFO took since the last call, in Pa x 10
        # (ints), oldest first, at baro_hz; None on a board without one.
        return hal.baro_read(self._baro)

    def accel_read(self):
        # Drains the LIS3DH FIFO: [[x, y, z] milli-g, ...]
        return self.accel.read() if self._accel_ok else []

    async def heart_rate(self):
        # Beats per minute from the MAX30102 (seconds of sampling), or None:
        # no sensor, nothing on the skin, no clear beat. Never a guess.
        return await self._hr.heart_rate()

    async def worn(self):
        # The MAX30102 sees skin (True), not (False), or there is no sensor (None).
        return await self._hr.on_skin()

    def moved(self):
        # The LIS3DH's activity interrupt fired since the last call (hal/lis3dh.py).
        try:
            return self._accel_ok and self.accel.moved()
        except OSError:
            return False

    def display_off(self):
        self.text = ""
        self.panel.power(False)

    def audio(self, state):
        if self._audio is not None:
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
        accel = self._wake_sources()
        machine.lightsleep(ms)
        self.woke = "accel" if accel.value() else "red" if self.button("red") else None
        if self.woke == "accel" and self._accel_ok:
            # The free-fall interrupt is latched: reading INT1_SRC lowers the
            # pin, else every later sleep would end at once. The fall's samples
            # wait in the FIFO (32: 640 ms at 50 Hz) for the fall detector.
            try:
                if self.accel.fell():
                    self.free_falls += 1
            except OSError:
                pass
        # An edge during light sleep raises no pin interrupt (the GPIO matrix
        # is asleep); the level is there after wake: a changed level is the edge.
        self._edge("red")
        self._edge("black")

    def _wake_sources(self):
        # The SOS button (low) and the LIS3DH's INT1 (active high, latched): the
        # original ESP32's ext1 wakes only on "all low" or "any high", so there
        # the button takes ext0; the S3's ext1 takes both buttons (any low).
        import esp32
        accel = machine.Pin(PINS["accel_int"])
        if PINS["s3"]:
            # ESP-IDF's ESP_EXT1_WAKEUP_ANY_LOW, the value MicroPython names WAKEUP_ALL_LOW
            esp32.wake_on_ext1(pins=(self._red, self._black), level=esp32.WAKEUP_ALL_LOW)
            esp32.wake_on_ext0(pin=accel, level=esp32.WAKEUP_ANY_HIGH)
        else:
            esp32.wake_on_ext0(pin=self._red, level=esp32.WAKEUP_ALL_LOW)
            esp32.wake_on_ext1(pins=(accel,), level=esp32.WAKEUP_ANY_HIGH)
        return accel

    def deep_sleep(self, ms):
        # A wake is a reboot (machine.reset_cause() DEEPSLEEP_RESET): the SOS
        # button, the LIS3DH's free-fall interrupt or the RTC timer, told
        # apart by rtc()[0]. main.py and the app run again from the top;
        # RAM is gone, RTC memory and the RTC clock (rtc()) are not. The
        # sensor runs on alone: its latch is cleared and its FIFO emptied
        # first, so INT1 is low going in and the FIFO holds only what comes.
        self._wake_sources()
        if self._accel_ok:
            try:
                self.accel.fell()
                self.accel.read()
            except OSError:
                pass
        machine.deepsleep(ms)

    def rtc(self, memory=None):
        # The RTC domain, which deep sleep keeps and RAM does not: (what ended
        # the deep sleep: "red", "accel", "timer", None after any other reset;
        # the RTC's seconds, which run through it while ticks_ms starts again
        # at 0; RTC slow memory, lost at power-on). With memory: writes it.
        if memory is not None:
            machine.RTC().memory(memory)
            return None
        why = None
        if machine.reset_cause() == machine.DEEPSLEEP_RESET:
            w = machine.wake_reason()
            accel_ext = machine.EXT0_WAKE if PINS["s3"] else machine.EXT1_WAKE
            if w == machine.TIMER_WAKE:
                why = "timer"
            elif w == accel_ext:
                why = "accel"
            elif w in (machine.EXT0_WAKE, machine.EXT1_WAKE):
                why = "red"
        return why, time.time(), machine.RTC().memory()

    def display(self, text):
        # The message in large type on the panel, coloured by the alarm's state
        # (hal/screen.py); on the console too, for whoever has the USB cable.
        self.text = text
        print("display:", text)
        self.panel.power(True)
        screen.show(self.panel, text)

    def vibrate(self, ms):
        # A task per buzz, not a poller: a task that wakes every few ms would
        # cut every light sleep that short.
        self._motor.pulse(ms)

    def signal(self, name):
        # A pattern on the motor and the buzzer at once: "sos", "confirm", "reminder".
        pattern = haptics.PATTERNS[name]
        asyncio.create_task(self._motor.play(pattern))
        asyncio.create_task(self._buzzer.play(pattern, haptics.TONES[name]))

    def battery(self):
        return self._gauge.read()

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
        if self._modem_power is not None and not self._modem_power.value():
            # BOARD_POWERON first: PWRKEY does nothing to a modem without supply
            # (LILYGO's examples raise it, then pulse PWRKEY). Its supply settles first.
            self._modem_power.value(1)
            await asyncio.sleep_ms(100)
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
