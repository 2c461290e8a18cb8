"""The board file's pin map against the board maker's own: LILYGO T-A7670E.

The reference values are LILYGO's, not ours: Xinyuan-LilyGO/LilyGO-T-A76XX,
examples/GPS_BuiltIn/utilities.h, the `#if defined(LILYGO_T_A7670)` block
(MODEM_TX_PIN is the ESP32's TX, wired to the modem's RXD; BOARD_POWERON_PIN
"must be set to HIGH for the modem to supply power"). That the power-on pin is
driven before PWRKEY is checked under MicroPython, on hal/esp32.py itself
(tests/firmware/mpy/ut_esp32_hal.py, test_the_modem_gets_its_supply_before_the_pwrkey_pulse).
"""
from __future__ import annotations

from .test_board_drivers import pin_map

# LilyGO-T-A76XX examples/GPS_BuiltIn/utilities.h, LILYGO_T_A7670
LILYGO_T_A7670 = {
    "MODEM_DTR_PIN": 25, "MODEM_TX_PIN": 26, "MODEM_RX_PIN": 27, "BOARD_PWRKEY_PIN": 4,
    "BOARD_POWERON_PIN": 12, "MODEM_RING_PIN": 33, "MODEM_RESET_PIN": 5, "BOARD_BAT_ADC_PIN": 35,
    "BOARD_MISO_PIN": 2, "BOARD_MOSI_PIN": 15, "BOARD_SCK_PIN": 14, "BOARD_SD_CS_PIN": 13,
}
OURS = {"MODEM_DTR_PIN": "modem_dtr", "MODEM_TX_PIN": "modem_tx", "MODEM_RX_PIN": "modem_rx",
        "BOARD_PWRKEY_PIN": "modem_pwrkey", "BOARD_POWERON_PIN": "modem_power", "BOARD_BAT_ADC_PIN": "batt_adc"}


def test_the_modem_and_battery_pins_are_the_boards_own():
    pins = pin_map()
    assert {lilygo: pins[name] for lilygo, name in OURS.items()} == {k: LILYGO_T_A7670[k] for k in OURS}


def test_no_watch_signal_sits_on_a_line_the_board_gives_the_modem():
    pins = pin_map()
    modem_lines = {LILYGO_T_A7670[k] for k in ("MODEM_DTR_PIN", "MODEM_TX_PIN", "MODEM_RX_PIN", "BOARD_PWRKEY_PIN",
                                               "BOARD_POWERON_PIN", "MODEM_RING_PIN", "MODEM_RESET_PIN",
                                               "BOARD_BAT_ADC_PIN")}
    others = {name: pin for name, pin in pins.items() if name not in OURS.values() and name != "s3"}
    assert not {n: p for n, p in others.items() if p in modem_lines}
    # The SD slot's lines are the only free outputs: the slot stays empty, and the
    # card's chip select (pulled to deselect) is the panel's chip select, not a motor.
    assert pins["tft_cs"] == LILYGO_T_A7670["BOARD_SD_CS_PIN"]
