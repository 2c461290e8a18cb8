# A recording stand-in for MicroPython's `esp32` module (see machine.py here).
import machine

WAKEUP_ALL_LOW, WAKEUP_ANY_HIGH = 0, 1


def wake_on_ext0(pin, level):
    machine.LOG.append(("ext0", pin.id, level))
    machine.WAKE["ext0"] = ((pin.id,), level)


def wake_on_ext1(pins, level):
    machine.LOG.append(("ext1", tuple(p.id for p in pins), level))
    machine.WAKE["ext1"] = (tuple(p.id for p in pins), level)
