# Bosch BMP390 barometer driver (I2C), an optional part on the LIS3DH's bus: the
# pressure at the wrist through the part's 512-byte FIFO, which goes on filling
# while the ESP32 deep-sleeps. Imported only when hal/esp32.py (or hal/sim.py)
# found the chip: a board without it never pays its heap.
# Registers, FIFO frames and compensation: the BMP390 datasheet, Bosch Sensortec
# BST-BMP390-DS002 (rev 1.7): section 4 (memory map), 3.6 (FIFO), 3.9.2
# (measurement time), 8 (calibration coefficients and compensation).
import struct
import time
from micropython import const

CHIP_ID = const(0x60)
_REG_CHIP_ID = const(0x00)
_REG_ERR = const(0x02)
_REG_FIFO_LENGTH = const(0x12)   # 0x12-0x13, fifo_byte_counter 8:0
_REG_FIFO_DATA = const(0x14)
_REG_FIFO_CONFIG_1 = const(0x17)
_REG_FIFO_CONFIG_2 = const(0x18)
_REG_PWR_CTRL = const(0x1B)
_REG_OSR = const(0x1C)
_REG_ODR = const(0x1D)
_REG_CONFIG = const(0x1F)
_REG_NVM = const(0x31)           # NVM_PAR_T1 .. NVM_PAR_P11, 21 bytes to 0x45
_REG_CMD = const(0x7E)
_SOFT_RESET = const(0xB6)
_CONF_ERR = const(0x04)          # ERR_REG bit 2: the configuration was refused

# The settings: the datasheet's "drop detection" use case (3.5, Table 10) takes
# pressure x2 and temperature x1 with the IIR filter off; here at a watch's rate,
# not 100 Hz. At 6.25 Hz the FIFO keeps 73 frames (7 bytes each): 11.7 s of
# history for a wake from deep sleep; T_conv (3.9.2) = 234 + 392 + 2 x 2020 +
# 163 + 2020 us = 6.85 ms a measurement, 4.3 % of the time. IIR coefficient 1
# halves the step response's time constant against noise (1/sqrt(3) of it) and
# still settles in two samples (0.3 s): a ~1 s mean resolves ~0.5 Pa, 4 cm.
# About 17 uA in all (docs/firmware.md).
HZ = 6.25
_OSR_P2_T1 = const(0x01)         # OSR: osr_p 001 (x2), osr_t 000 (x1)
_ODR_6_25 = const(0x05)          # ODR: odr_sel 5, 200 Hz / 2^5
_IIR_1 = const(0x02)             # CONFIG: iir_filter 001, coefficient 1
_FIFO_FILTERED = const(0x08)     # FIFO_CONFIG_2: data_select 01 (filtered), subsampling 2^0
# FIFO_CONFIG_1: fifo_mode, fifo_press_en, fifo_temp_en; fifo_stop_on_full clear,
# so a full FIFO drops its oldest frame and keeps the latest seconds.
_FIFO_PT_OVERWRITE = const(0x19)
_NORMAL_PT = const(0x33)         # PWR_CTRL: press_en, temp_en, mode 11 (normal)

# FIFO frame headers (3.6.2): sensor frames, then the control frames.
_H_PT = const(0x94)              # temperature then pressure, 3 bytes each
_H_T = const(0x90)
_H_P = const(0x84)
_H_TIME = const(0xA0)            # sensortime, 3 bytes
_H_EMPTY = const(0x80)
_H_CONFIG_CHANGE = const(0x48)   # + 1 byte
_H_CONFIG_ERROR = const(0x44)    # + 1 byte


class BMP390:
    def __init__(self, i2c, addr):
        self.i2c, self.addr = i2c, addr
        self._cal = None
        self._tq = 0   # the last temperature, 1/65536 degC: a pressure-only frame uses it

    def _w(self, reg, value):
        self.i2c.writeto_mem(self.addr, reg, bytes((value,)))

    def _r(self, reg, n=1):
        return self.i2c.readfrom_mem(self.addr, reg, n)

    def init(self):
        # False when no BMP390 answers or it refuses the settings. A part that already
        # runs with them (the ESP32 woke from deep sleep) is left alone: its FIFO holds
        # the seconds before the wake.
        try:
            if self._r(_REG_CHIP_ID)[0] != CHIP_ID:
                return False
            if bytes(self._r(_REG_FIFO_CONFIG_1, 7)) != self._settings():
                self._w(_REG_CMD, _SOFT_RESET)
                time.sleep_ms(3)   # start-up after a soft reset: 2 ms (Table 1)
                self._w(_REG_OSR, _OSR_P2_T1)
                self._w(_REG_ODR, _ODR_6_25)
                self._w(_REG_CONFIG, _IIR_1)
                self._w(_REG_FIFO_CONFIG_2, _FIFO_FILTERED)
                self._w(_REG_FIFO_CONFIG_1, _FIFO_PT_OVERWRITE)
                self._w(_REG_PWR_CTRL, _NORMAL_PT)
                if self._r(_REG_ERR)[0] & _CONF_ERR:
                    return False
            self._cal = self._calibration(self._r(_REG_NVM, 21))
        except OSError:
            return False
        return True

    @staticmethod
    def _settings():
        # FIFO_CONFIG_1 0x17 .. ODR 0x1D as init leaves them (INT_CTRL 0x19 and IF_CONF
        # 0x1A at their reset values, 0x02 and 0x00).
        return bytes((_FIFO_PT_OVERWRITE, _FIFO_FILTERED, 0x02, 0x00, _NORMAL_PT, _OSR_P2_T1, _ODR_6_25))

    @staticmethod
    def _calibration(nvm):
        # Section 8.4: the NVM's integers; the scaling of each (PAR_T1 = NVM_PAR_T1 * 2^8,
        # PAR_P1 = (NVM_PAR_P1 - 2^14) / 2^20, ...) is folded into the shifts of _pressure.
        return struct.unpack("<HHbhhbbHHbbhbb", nvm)

    def _temperature(self, raw):
        # 8.5: t = d PAR_T2 + d^2 PAR_T3, d = raw - PAR_T1; here in 1/65536 degC, exactly
        # (d NVM_T2 2^18 + d^2 NVM_T3) / 2^48, rounded.
        c = self._cal
        d = raw - (c[0] << 8)
        return (((d * c[1]) << 18) + d * d * c[2] + (1 << 31)) >> 32

    def _pressure(self, raw, tq):
        # 8.6, the datasheet's polynomial in the raw pressure and t = tq / 2^16, each
        # term on the common denominator 2^85 (big integers: no single-precision float
        # loses the 0.1 Pa here). Returns Pa x 10, rounded.
        c = self._cal
        t2 = tq * tq
        t3 = t2 * tq
        out1 = (c[7] << 88) + ((c[8] * tq) << 63) + ((c[9] * t2) << 45) + ((c[10] * t3) << 22)
        out2 = raw * (((c[3] - 16384) << 65) + (((c[4] - 16384) * tq) << 40) + ((c[5] * t2) << 21) + c[6] * t3)
        out3 = raw * raw * ((c[11] << 37) + ((c[12] * tq) << 21)) + ((raw * raw * raw * c[13]) << 20)
        return ((out1 + out2 + out3) * 10 + (1 << 84)) >> 85

    def compensate(self, raw_p, raw_t):
        # One measurement: (Pa x 10, degC x 100), integers.
        tq = self._temperature(raw_t)
        return self._pressure(raw_p, tq), (tq * 100 + 32768) >> 16

    def drain(self):
        # Every frame in the FIFO, oldest first: the pressures in Pa x 10 (ints).
        n = self._r(_REG_FIFO_LENGTH, 2)
        n = n[0] | (n[1] & 1) << 8
        if not n:
            return []
        buf = self._r(_REG_FIFO_DATA, n)
        out = []
        i = 0
        while i < n:
            h = buf[i]
            if h == _H_PT or h == _H_T or h == _H_P:
                if i + (7 if h == _H_PT else 4) > n:
                    break   # a frame cut short: none is, when FIFO_LENGTH bytes are read
                j = i + 1
                if h != _H_P:
                    self._tq = self._temperature(buf[j] | buf[j + 1] << 8 | buf[j + 2] << 16)
                    j += 3
                if h != _H_T:
                    out.append(self._pressure(buf[j] | buf[j + 1] << 8 | buf[j + 2] << 16, self._tq))
                    j += 3
                i = j
            elif h == _H_TIME:
                i += 4
            elif h == _H_CONFIG_CHANGE or h == _H_CONFIG_ERROR:
                i += 2
            else:
                break   # an empty frame (0x80) or a byte out of step: nothing more to read
        return out
