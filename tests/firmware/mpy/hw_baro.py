# hal/esp32.py's barometer on the bench: the board file under the unix port, the
# machine stand-in wired to hwsim's models (PERS_HWSIM_WIRES), the BMP390 model on
# the I2C bus or not. Run by tests/firmware/test_barometer.py, one step a process;
# it prints what the board saw as "key: json" lines.
import sys
import json
import time

for _p in sys.path:
    if _p.endswith("/mpy"):
        sys.path.insert(0, _p + "/esp32stubs")
        break
from hal import esp32 as hal_esp32  # noqa: E402


def out(key, value):
    print("%s: %s" % (key, json.dumps(value)))


def step_read(ms, every_ms, wait_ms="0"):
    # The board as it boots, wait_ms, then baro_read() every every_ms for ms: each
    # read with the board's tick.
    board = hal_esp32.Board()
    out("hz", board.baro_hz)
    out("driver_loaded", "hal.bmp390" in sys.modules)
    reads = []
    time.sleep_ms(int(wait_ms))
    t0 = time.ticks_ms()
    first = board.baro_read()
    reads.append([time.ticks_diff(time.ticks_ms(), t0), first])
    while time.ticks_diff(time.ticks_ms(), t0) < int(ms):
        time.sleep_ms(int(every_ms))
        reads.append([time.ticks_diff(time.ticks_ms(), t0), board.baro_read()])
    out("reads", reads)
    out("ints", all(type(v) is int for r in reads if r[1] for v in r[1]))


def step_rewake(ms):
    # A boot, ms of deep sleep (the part measures on), the next boot: the second
    # board's first read still holds what the FIFO took before it started.
    first = hal_esp32.Board()
    first.baro_read()
    time.sleep_ms(int(ms))
    second = hal_esp32.Board()
    out("after_wake", second.baro_read())


def step_reconfigure():
    # The FIFO's frames with a configuration change among them (the IIR filter set
    # to 3, the sensortime frame on): the driver steps over their headers.
    board = hal_esp32.Board()
    time.sleep_ms(300)
    board._baro._w(0x1F, 0x04)
    board._baro._w(0x17, 0x1D)
    time.sleep_ms(300)
    out("values", board.baro_read())


def step_compensate(raw_p, raw_t, nvm_hex):
    # The driver's integer compensation of one raw frame, for a published test vector.
    import binascii
    from hal.bmp390 import BMP390
    baro = BMP390(None, 0x77)
    baro._cal = baro._calibration(binascii.unhexlify(nvm_hex))
    out("compensated", list(baro.compensate(int(raw_p), int(raw_t))))


globals()["step_" + sys.argv[1]](*sys.argv[2:])
out("done", True)
