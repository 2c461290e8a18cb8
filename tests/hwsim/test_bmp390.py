"""hwsim's BMP390 model (hwsim/bmp390.py) at register level, the world's air at the wrist
(hwsim/world.py) and the part's place on the board (scenario [board], the energy meter).
The driver-level tests are in tests/firmware/test_barometer.py."""
from __future__ import annotations

import pytest

from hwsim.bmp390 import REAL_NVM, Bmp390, Calibration, conversion_s, isa_pressure_pa, normal_mode_ma
from hwsim.energy import Meter
from hwsim.runner import Watch
from hwsim.scenario import ScenarioError, WorldSpec, parse
from hwsim.world import World


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def part(clock: Clock, pa: float = 100000.0, **kw) -> Bmp390:
    return Bmp390(lambda t: (pa, 25.0), clock, **kw)


def configure(p: Bmp390, fifo_config_1: int = 0x19) -> None:
    for reg, value in ((0x1C, 0x01), (0x1D, 0x05), (0x1F, 0x02), (0x18, 0x08), (0x17, fifo_config_1),
                       (0x1B, 0x33)):
        p.write(reg, bytes((value,)))


# --- the standard atmosphere ---------------------------------------------------------------
@pytest.mark.parametrize("altitude_m,table_pa", [(0, 101325), (1000, 89875), (2000, 79495), (500, 95461)])
def test_isa_pressure_is_the_published_table(altitude_m, table_pa):
    # ICAO standard atmosphere (ISO 2533) table values.
    assert abs(isa_pressure_pa(altitude_m) - table_pa) < 1.0


def test_the_wrist_height_drives_the_pressure_and_keeps_its_history():
    clock = Clock()
    world = World(WorldSpec(altitude_m=200.0), clock)
    assert world.wrist_height_m == 0.8
    standing = world.pressure_pa()
    assert standing == isa_pressure_pa(200.8)
    clock.t = 30.0
    world.wrist_height_m = 0.1        # on the floor from t = 30
    assert 8.0 < world.pressure_pa() - standing < 8.6
    assert world.pressure_pa(29.9) == standing and world.air_at(31.0)[0] == world.pressure_pa()


# --- registers -------------------------------------------------------------------------------------
def test_identity_reset_values_and_calibration_block():
    p = part(Clock())
    assert p.read(0x00, 2) == bytes((0x60, 0x01))
    assert p.read(0x31, 21) == REAL_NVM
    assert p.read(0x10, 1) == b"\x01" and p.read(0x10, 1) == b"\x00"   # por_detected, cleared on read
    assert p.read(0x03, 1) == b"\x10"                                  # cmd_rdy
    assert p.read(0x17, 2) == bytes((0x02, 0x02)) and p.read(0x1C, 1) == b"\x02"


def test_the_model_inverts_the_compensation():
    cal = Calibration(REAL_NVM)
    # The published vector (elixir-sensors/bmp3xx tests): raw 0x6D9F97 / 0x85D873.
    t = cal.temperature(0x85D873)
    assert abs(t - 30.4993) < 1e-4 and abs(cal.pressure(0x6D9F97, t) - 100876.006) < 1e-3
    for pa, degc in ((101325.0, 25.0), (89875.0, -5.0), (70000.0, 40.0)):
        raw_t = cal.raw_temperature(degc)
        assert abs(cal.temperature(raw_t) - degc) < 1e-9
        assert abs(cal.pressure(cal.raw_pressure(pa, degc), degc) - pa) < 1e-6


def test_too_fast_a_rate_for_the_oversampling_is_refused():
    # 200 Hz (5 ms) with x2/x1 (6.85 ms): conf_err, and the part stays asleep (3.3.3).
    p = part(Clock())
    p.write(0x1C, b"\x01")
    assert conversion_s(1, 0) == pytest.approx(6.849e-3)
    p.write(0x1B, b"\x33")
    assert p.read(0x02, 1)[0] & 0x04 and p.mode() == 0


def test_a_multi_byte_write_is_register_data_pairs():
    p = part(Clock())
    p.write(0x1C, bytes((0x01, 0x1D, 0x05, 0x1F, 0x02)))
    assert (p.regs[0x1C], p.regs[0x1D], p.regs[0x1F]) == (0x01, 0x05, 0x02)


def test_the_fifo_fills_at_the_odr_with_its_frames_and_headers():
    clock = Clock()
    p = part(clock)
    configure(p, fifo_config_1=0x1D)          # with the sensortime frame
    clock.t = 2.0                               # 12.5 measurements at 6.25 Hz
    n = int.from_bytes(p.read(0x12, 2), "little")
    assert n == 12 * 7
    data = p.read(0x14, n + 4 + 2)
    assert [data[i] for i in range(0, n, 7)] == [0x94] * 12
    assert data[n] == 0xA0 and data[n + 4:] == bytes((0x80, 0x00))   # sensortime, then empty
    # A configuration change in a running FIFO leaves its frame.
    clock.t = 2.5
    p.write(0x1F, b"\x04")
    assert p.read(0x14, int.from_bytes(p.read(0x12, 2), "little"))[-2:] == bytes((0x48, 0x00))
    p.write(0x7E, b"\xB0")                      # fifo_flush
    assert p.read(0x12, 2) == b"\x00\x00"


def test_a_full_fifo_overwrites_or_stops_as_configured():
    for config, dropped in ((0x19, True), (0x1B, False)):
        clock = Clock()
        p = part(clock)
        configure(p, fifo_config_1=config)
        clock.t = 20.0                           # 125 measurements, 73 fit
        assert int.from_bytes(p.read(0x12, 2), "little") == 73 * 7
        assert (p.frames_dropped > 0) == dropped


def test_noise_follows_the_oversampling_and_the_iir_filter():
    def spread(osr: int, config: int) -> float:
        clock = Clock()
        p = part(clock, seed=3)
        p.write(0x1C, bytes((osr,)))
        p.write(0x1D, b"\x05")
        p.write(0x1F, bytes((config,)))
        p.write(0x1B, b"\x33")
        clock.t = 100.0
        p.advance()
        values = [p.cal.pressure(raw, p.cal.temperature(t)) for _, raw, t in p.log[20:]]
        mean = sum(values) / len(values)
        return (sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5

    x1, x8, x8_iir3 = spread(0x00, 0x00), spread(0x03, 0x00), spread(0x03, 0x04)
    assert 1.4 < x1 < 2.2 and 0.5 < x8 < 0.8          # 1.8 Pa / sqrt(osr)
    assert x8_iir3 < 0.6 * x8                          # coefficient 3 leaves 1/sqrt(7) of white noise


def test_the_part_is_charged_to_the_meter_and_runs_through_hours_of_deep_sleep():
    clock = Clock()
    meter = Meter(clock)
    p = part(clock, meter=meter)
    assert meter.state["baro"] == "sleep"
    configure(p)
    assert meter.state["baro"] == "normal"
    assert meter.currents["baro"]["normal"] == pytest.approx(normal_mode_ma(1, 0, 6.25))
    assert 0.015 < normal_mode_ma(1, 0, 6.25) < 0.020          # 17.4 uA
    clock.t = 3600.0 * 5
    meter.used()
    assert meter.by_part["baro"] == pytest.approx(5 * normal_mode_ma(1, 0, 6.25), rel=1e-6)   # 0.087 mAh
    assert int.from_bytes(p.read(0x12, 2), "little") == 73 * 7   # the last seconds, quickly
    assert p.frames_made == int(3600 * 5 * 6.25)


# --- on the board ---------------------------------------------------------------------------------
def test_only_a_board_that_says_so_has_a_barometer():
    plain = Watch("d", "s", scenario=parse({"name": "plain"}))
    fitted = Watch("d", "s", scenario=parse({"name": "b", "board": {"barometer": True, "barometer_addr": 0x76},
                                             "timeline": [{"at": 5, "wrist_height": 0.1}]}))
    try:
        assert plain.baro_part is None and 0x76 not in plain.i2c.devices and 0x77 not in plain.i2c.devices
        assert fitted.i2c.devices[0x76] is fitted.baro_part
        assert fitted.scenario.timeline[0].wrist_height == 0.1
    finally:
        for w in (plain, fitted):
            w.stop()
    with pytest.raises(ScenarioError):
        parse({"name": "x", "board": {"barometer": True, "barometer_addr": 0x50}})


def test_the_standby_figures_include_the_barometer_only_when_fitted():
    from hwsim.power_model import integrate

    def hour(baro: str) -> dict:
        timeline = [(0.0, "mcu", "deep_sleep"), (0.0, "modem", "off"), (0.0, "baro", baro)]
        return integrate(timeline, [], 0.0, 3600.0)["by_item_mah"]

    assert "bmp390 barometer" not in hour("absent")
    assert hour("normal")["bmp390 barometer"] == pytest.approx(normal_mode_ma(1, 0, 6.25), abs=1e-5)
