# ST LIS3DH accelerometer driver (I2C): the samples through its 32-deep FIFO,
# and its own free-fall interrupt on INT1, so the ESP32 can sleep and the part
# wakes it (hal/esp32.py: the INT1 pin is an ext0/ext1 wake source).
# Registers and bits: the LIS3DH datasheet (DocID17530), section 8; the
# free-fall set-up: ST application note AN3308, 6.3 "Free-fall detection".
# Other parts of the same class (Bosch BMA423, QST QMI8658) would be a driver
# beside this one with the same three calls (init, read, fell).
from micropython import const

ADDR = const(0x19)          # SA0 high
_WHO_AM_I = const(0x0F)
_ID = const(0x33)
CTRL_REG1 = const(0x20)
CTRL_REG2 = const(0x21)
CTRL_REG3 = const(0x22)
CTRL_REG4 = const(0x23)
CTRL_REG5 = const(0x24)
CTRL_REG6 = const(0x25)
_OUT_X_L = const(0x28)
FIFO_CTRL = const(0x2E)
_FIFO_SRC = const(0x2F)
INT1_CFG = const(0x30)
INT1_SRC = const(0x31)
INT1_THS = const(0x32)
INT1_DURATION = const(0x33)
_AUTO_INC = const(0x80)     # sub-address MSB: the register address increments (6.1.1)

_XYZ_ON = const(0x07)
_ODR = {1: 1, 10: 2, 25: 3, 50: 4, 100: 5, 200: 6, 400: 7}  # CTRL_REG1 ODR[3:0] (8.8)
_FS_4G_HR = const(0x18)     # CTRL_REG4: FS = +-4 g, HR: 12 bits, 2 mg a digit (Table 4)
_FIFO_EN_LIR1 = const(0x48)  # CTRL_REG5: FIFO_EN, LIR_INT1 (latched until INT1_SRC is read)
_I1_IA1 = const(0x40)       # CTRL_REG3: interrupt generator 1 on the INT1 pin
_INT_ACTIVE_HIGH = const(0x00)  # CTRL_REG6: INT_POLARITY 0
_STREAM = const(0x80)       # FIFO_CTRL: FM = 10, stream: the oldest sample goes when full
# INT1_CFG: AOI = 1, 6D = 0 (AND of the events), ZLIE, YLIE, XLIE: every axis
# below the threshold at once is weightlessness (AN3308 6.3, Table 27: 0x95).
FREE_FALL_CFG = const(0x95)
_THS_MG_PER_LSB = const(32)  # INT1_THS at +-4 g (8.21)
FREE_FALL_MG = const(350)   # AN3308 6.3: 350 mg
# AN3308 6.3 suggests 30 ms (3 samples at 100 Hz). Recorded wrist falls (WEDA-FALL,
# docs/figures.md) stay under 350 mg on every axis for only 2 to 6 samples at
# 50 Hz: 3 samples missed two of five, 2 samples (40 ms, also the detector's
# own loss-of-support length, app/fall.py) woke on all five.
FREE_FALL_MS = const(40)
# Activity (the wearer moves) on interrupt generator 2, polled, on no pin: the
# inertial wake-up of AN3308 6.2.2, high-pass filtered (CTRL_REG2 HPIS2, so
# gravity is taken out whatever the wrist's angle), OR of the high events
# (INT2_CFG 0x2A: XHIE, YHIE, ZHIE), latched (CTRL_REG5 LIR_INT2) until
# INT2_SRC is read. INT1 stays the free-fall generator.
INT2_CFG = const(0x34)
INT2_SRC = const(0x35)
INT2_THS = const(0x36)
INT2_DURATION = const(0x37)
_REFERENCE = const(0x26)
_HPIS2 = const(0x02)        # CTRL_REG2: the high-pass filter on interrupt generator 2 (8.9)
_LIR_INT2 = const(0x02)     # CTRL_REG5: INT2 latched until INT2_SRC is read (8.12)
ACTIVITY_CFG = const(0x2A)
ACTIVITY_MG = const(96)     # a wrist at rest moves less; a step, a gesture more


class LIS3DH:
    def __init__(self, i2c, addr=ADDR):
        self.i2c, self.addr = i2c, addr
        self.ok = False

    def _w(self, reg, value):
        self.i2c.writeto_mem(self.addr, reg, bytes((value,)))

    def _r(self, reg, n=1):
        return self.i2c.readfrom_mem(self.addr, reg, n)

    def init(self, hz=50):
        # False when no LIS3DH answers (absent, or another part at the address).
        try:
            if self._r(_WHO_AM_I)[0] != _ID:
                return False
            self._w(CTRL_REG1, _ODR[hz] << 4 | _XYZ_ON)
            self._w(CTRL_REG2, 0x00)       # no high-pass filter: free fall is seen in the raw data
            self._w(CTRL_REG3, _I1_IA1)
            self._w(CTRL_REG4, _FS_4G_HR)
            self._w(CTRL_REG5, _FIFO_EN_LIR1)
            self._w(CTRL_REG6, _INT_ACTIVE_HIGH)
            self._w(FIFO_CTRL, _STREAM)
            self._w(INT1_THS, (FREE_FALL_MG + _THS_MG_PER_LSB - 1) // _THS_MG_PER_LSB)
            self._w(INT1_DURATION, max(1, FREE_FALL_MS * hz // 1000))  # in 1/ODR steps (8.22)
            self._w(INT1_CFG, FREE_FALL_CFG)
            self._r(INT1_SRC)              # a latched event from before: cleared
            self._activity()
        except OSError:
            return False
        self.ok = True
        return True

    def _activity(self):
        # Read-modify-write: the bits of interrupt 1 stay as they were set.
        self._w(CTRL_REG2, self._r(CTRL_REG2)[0] | _HPIS2)
        self._w(CTRL_REG5, self._r(CTRL_REG5)[0] | _LIR_INT2)
        self._w(INT2_THS, (ACTIVITY_MG + _THS_MG_PER_LSB - 1) // _THS_MG_PER_LSB)
        self._w(INT2_DURATION, 0)   # one sample past the threshold is movement
        self._w(INT2_CFG, ACTIVITY_CFG)
        self._r(_REFERENCE)         # sets the filter to the present field: no 1 g step at start (AN3308 6.2.2)
        self._r(INT2_SRC)

    def moved(self):
        # True once after movement since the last call (reading INT2_SRC clears the latch).
        return bool(self._r(INT2_SRC)[0] & 0x40)

    def fell(self):
        # True once after a free fall raised INT1: reading INT1_SRC clears the
        # latch and lowers the pin (IA, bit 6: the interrupt is active).
        return bool(self._r(INT1_SRC)[0] & 0x40)

    def read(self):
        # Drains the FIFO: [[x, y, z] milli-g, ...], oldest first. One burst:
        # from OUT_X_L with auto-increment the address wraps from OUT_Z_H back
        # to OUT_X_L, one sample after the other (AN3308 9.3.1 "Retrieving data").
        src = self._r(_FIFO_SRC)[0]
        n = 32 if src & 0x40 else src & 0x1F   # OVRN_FIFO: all 32 levels full
        if not n:
            return []
        raw = self._r(_OUT_X_L | _AUTO_INC, 6 * n)
        out = []
        for k in range(0, 6 * n, 6):
            s = []
            for i in (k, k + 2, k + 4):
                v = raw[i + 1] << 8 | raw[i]
                if v & 0x8000:
                    v -= 65536
                s.append(v >> 4 << 1)  # 12 bits, left-justified; 2 mg a digit at +-4 g
            out.append(s)
        return out
