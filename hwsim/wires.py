"""The board's wires for a bench test of ``hal/esp32.py``: GPIO levels, the SPI
bus (the ST7789 panel), the I2C bus (the LIS3DH), the battery ADC and the PWM
outputs, each carried as one line over loopback TCP from MicroPython's
``machine`` stand-in (tests/firmware/mpy/esp32stubs/machine.py). Every line
carries the board's millisecond tick, so the models keep the board's time:

    G <t> <pin> <level>            an output pin's level            (no answer)
    S <t> <hex>                    bytes on the SPI bus's MOSI      (no answer)
    P <t> <pin> <freq> <duty_u16>  a PWM output                     (no answer)
    L <t> <pin>                    an input pin's level          -> 0 | 1
    R <t> <addr> <reg> <n>         an I2C register read          -> <hex> | NACK
    W <t> <addr> <reg> <hex>       an I2C register write         -> OK | NACK
    A <t> <pin> <atten>            ADC.read_uv() at that atten   -> <microvolts>

The SPI model sees the D/CX and CSX pins through the GPIO levels (``dc`` and
``cs`` in ``wiring``), as the chip does; the INT1 pin (``accel_int``) reads the
LIS3DH's interrupt output; buttons read high (pulled up) unless pressed.
"""
from __future__ import annotations

import socket
import threading
from typing import Any

from hwsim.analog import BatteryAdc, Pwm
from hwsim.lis3dh import Lis3dh
from hwsim.st7789 import St7789


class Wires:
    def __init__(self, wiring: dict[str, int], panel: St7789, accel: Lis3dh, adc: BatteryAdc,
                 accel_addr: int = 0x19):
        self.wiring, self.panel, self.accel, self.adc = wiring, panel, accel, adc
        self.i2c: dict[int, Any] = {accel_addr: accel}
        self.pwm = Pwm()
        self.levels: dict[int, int] = {}
        self.pressed: set[int] = set()
        self.errors: list[str] = []
        self._srv = socket.create_server(("127.0.0.1", 0))
        self.port = self._srv.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> Wires:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._srv.close()
        self._thread.join(5)

    def _serve(self) -> None:
        try:
            conn, _ = self._srv.accept()
        except OSError:
            return
        with conn, conn.makefile("rwb") as f:
            for line in f:
                answer = self.handle(line.decode(errors="replace").split())
                if answer is not None:
                    f.write(answer.encode() + b"\n")
                    f.flush()

    def handle(self, w: list[str]) -> str | None:
        try:
            op, t = w[0], int(w[1])
            if op == "G":
                self.levels[int(w[2])] = int(w[3])
            elif op == "S":
                self.panel.write(bytes.fromhex(w[2]), self.levels.get(self.wiring["tft_dc"], 1),
                                 self.levels.get(self.wiring["tft_cs"], 0), t)
            elif op == "P":
                self.pwm.set(t, int(w[2]), int(w[3]), int(w[4]))
            elif op == "L":
                return str(self.level(int(w[2]), t))
            elif op == "A":
                return str(self.adc.read_uv(int(w[3])))
            elif op in ("R", "W"):
                dev = self.i2c.get(int(w[2]))
                if dev is None:
                    return "NACK"
                if op == "R":
                    return dev.read(int(w[3]), int(w[4]), t).hex()
                dev.write(int(w[3]), bytes.fromhex(w[4]), t)
                return "OK"
            else:
                self.errors.append(" ".join(w))
        except (IndexError, ValueError) as e:
            self.errors.append(f"{' '.join(w)}: {e}")
            return "NACK"
        return None

    def level(self, pin: int, t: int) -> int:
        if pin == self.wiring.get("accel_int"):
            self.accel.advance(t)
            return self.accel.int1()
        return 0 if pin in self.pressed else 1
