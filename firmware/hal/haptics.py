# The vibration motor and the buzzer, each on a PWM output (machine.PWM).
# The motor (a coin ERM behind a transistor) runs at 20 kHz, above hearing,
# and its strength is the duty; the piezo buzzer is driven at 50% duty at a
# tone's frequency. A pattern is (on ms, off ms) pairs; SOS is the Morse
# letters (... --- ...: dot 1 unit, dash 3, gap 1, letter gap 3, ITU-R M.1677-1).
import asyncio
from micropython import const

MOTOR_HZ = const(20000)
MOTOR_DUTY = const(45000)      # of 65535: about 70% of the cell's voltage on the motor
BUZZER_DUTY = const(32768)     # 50%: the loudest square wave for a piezo
_UNIT = const(150)             # one Morse unit, ms

SOS = ((_UNIT, _UNIT), (_UNIT, _UNIT), (_UNIT, 3 * _UNIT),
       (3 * _UNIT, _UNIT), (3 * _UNIT, _UNIT), (3 * _UNIT, 3 * _UNIT),
       (_UNIT, _UNIT), (_UNIT, _UNIT), (_UNIT, 0))
CONFIRM = ((80, 80), (80, 0))                     # two short: "done"
REMINDER = ((400, 300), (400, 300), (400, 0))     # three long: "look at me"
PATTERNS = {"sos": SOS, "confirm": CONFIRM, "reminder": REMINDER}
TONES = {"sos": 3000, "confirm": 2000, "reminder": 2500}   # Hz; near a small piezo's resonance


class Pulser:
    # One PWM output switched on and off; duty 0 is off (the pin held low).
    def __init__(self, pwm, freq, duty):
        self.pwm, self.freq, self.duty = pwm, freq, duty
        self._gen = 0
        pwm.duty_u16(0)

    def on(self, freq=None):
        self.pwm.freq(freq or self.freq)
        self.pwm.duty_u16(self.duty)

    def off(self):
        self.pwm.duty_u16(0)

    def pulse(self, ms):
        # On for ms; a later pulse or pattern takes over (its own generation).
        self._gen += 1
        self.on()
        asyncio.create_task(self._off_after(self._gen, ms))

    async def _off_after(self, gen, ms):
        await asyncio.sleep_ms(ms)
        if gen == self._gen:
            self.off()

    async def play(self, pattern, freq=None):
        self._gen += 1
        gen = self._gen
        for on_ms, off_ms in pattern:
            if gen != self._gen:
                return
            self.on(freq)
            await asyncio.sleep_ms(on_ms)
            self.off()
            if off_ms:
                await asyncio.sleep_ms(off_ms)
