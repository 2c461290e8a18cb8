# The battery gauge: the cell's voltage on an ADC pin through the board's
# 100k/100k divider (LILYGO T-A7670E: GPIO35), read as calibrated microvolts
# (ADC.read_uv, 11 dB attenuation: the ESP32 measures 150-2450 mV there, and a
# full cell, 4.2 V, is 2.1 V at the pin), and the charge left from the cell's
# open-circuit voltage curve. The curve: a single Li-ion/LiPo cell at 20 C,
# percent every 5, from the Linux kernel's device tree for the Spreadtrum
# SP9860G board (arch/arm64/boot/dts/sprd/sp9860g-1h10.dts, battery node,
# ocv-capacity-table-0), the "simple-battery" binding's own example.
# While USB charges the cell the pin reads the charger, not the cell (LILYGO's
# README): the figure is only right on battery.
from micropython import const

_DIVIDER = const(2)
_SAMPLES = const(8)    # averaged: the ESP32's ADC is noisy by tens of millivolts
# Millivolts at 100, 95, ... 0 %.
_OCV_MV = (4185, 4113, 4066, 4022, 3983, 3949, 3917, 3889, 3864, 3835, 3805,
           3787, 3777, 3773, 3770, 3765, 3752, 3724, 3680, 3605, 3400)


def percent(mv):
    # Linear between the curve's points; above the first 100, below the last 0.
    if mv >= _OCV_MV[0]:
        return 100
    for i in range(1, len(_OCV_MV)):
        lo = _OCV_MV[i]
        if mv >= lo:
            hi = _OCV_MV[i - 1]
            return 100 - 5 * i + (5 * (mv - lo) + (hi - lo) // 2) // (hi - lo)
    return 0


class Gauge:
    def __init__(self, adc):
        self.adc = adc   # machine.ADC, attenuation set to 11 dB by the board

    def read(self):
        total = 0
        for _ in range(_SAMPLES):
            total += self.adc.read_uv()
        mv = total * _DIVIDER // (_SAMPLES * 1000)
        return {"pct": percent(mv), "mv": mv}
