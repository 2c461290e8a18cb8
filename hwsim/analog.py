"""The ESP32's analog edges the watch uses: the battery on an ADC pin through a
divider, and PWM outputs (vibration motor, buzzer), at the level of machine.ADC
and machine.PWM calls carried from the board with its millisecond tick.

ADC: ``read_uv()`` is the calibrated reading of the pin voltage. The ESP32's
SAR ADC measures only within its attenuation's range (ESP-IDF Programming
Guide, ESP32, "ADC Oneshot Mode Driver", ADC attenuation table): 0 dB 100-950 mV,
2.5 dB 100-1250 mV, 6 dB 150-1750 mV, 11 dB 150-2450 mV; a pin beyond the range
reads as its end (the reading saturates). The battery reaches the pin through
the board's 100k/100k divider (LILYGO T-A7670E: GPIO35, "BOARD_BAT_ADC_PIN" in
LILYGO's LilyGO-T-A76XX examples/utilities.h), so the pin sees half the cell.

PWM: every duty and frequency the board sets, with its time; ``bursts(pin)``
gives the on intervals (duty > 0) as (start ms, length ms, freq, duty_u16).
"""
from __future__ import annotations

ATTEN_RANGE_MV = {0: (100, 950), 1: (100, 1250), 2: (150, 1750), 3: (150, 2450)}  # machine.ADC.ATTN_*


class BatteryAdc:
    def __init__(self, cell_mv: float, divider: float = 2.0):
        self.cell_mv, self.divider = cell_mv, divider
        self.reads = 0

    def read_uv(self, atten: int) -> int:
        self.reads += 1
        lo, hi = ATTEN_RANGE_MV.get(atten, ATTEN_RANGE_MV[0])
        pin_mv = min(hi, max(lo, self.cell_mv / self.divider))
        return int(pin_mv * 1000)


class Pwm:
    def __init__(self) -> None:
        self.log: list[tuple[int, int, int, int]] = []  # (board ms, pin, freq, duty_u16)

    def set(self, t_ms: int, pin: int, freq: int, duty_u16: int) -> None:
        self.log.append((t_ms, pin, freq, duty_u16))

    def bursts(self, pin: int) -> list[tuple[int, int, int, int]]:
        out = []
        start: tuple[int, int, int] | None = None
        for t, p, freq, duty in self.log:
            if p != pin:
                continue
            if duty and start is None:
                start = (t, freq, duty)
            elif not duty and start is not None:
                out.append((start[0], t - start[0], start[1], start[2]))
                start = None
        return out
