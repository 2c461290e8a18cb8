"""The standby integrator charges a known sequence of states, AT commands and bursts
as the datasheet figures say; no standby figure is asserted here."""
import pytest

from hwsim import power_model
from hwsim.energy import Meter

F = {k: f.value for k, f in power_model.FIGURES.items()}


def _floor_mah(seconds: float) -> float:
    return sum(power_model.floor_ma(600.0).values()) * seconds / 3600


def test_ticks_with_the_modem_off_are_counted_and_charged_at_the_board_s_time():
    # ten 500 ms ticks: awake 30 ms of host time each, light sleep the rest
    tl = [(0.0, "mcu", "active"), (0.0, "modem", "off"), (0.0, "gnss", "off"), (0.0, "display", "off"),
          (0.0, "vibration", "off")]
    for i in range(10):
        tl += [(i * 0.5 + 0.03, "mcu", "light_sleep"), ((i + 1) * 0.5, "mcu", "active")]
    r = power_model.integrate(tl, [], 0.0, 5.0, tls=False)
    assert r["counts"]["tick_wakes"] == 10 and r["counts"]["light_sleeps"] == 10
    items = r["by_item_mah"]
    assert items["esp32 active (wakes)"] == pytest.approx(10 * F["esp32_wake_active_s"] * F["esp32_active_ma"] / 3600,
                                                          abs=1e-5)
    assert items["esp32 light sleep"] == pytest.approx(10 * 0.47 * F["esp32_light_sleep_ma"] / 3600, abs=1e-5)
    assert r["mah"] == pytest.approx(items["esp32 active (wakes)"] + items["esp32 light sleep"]
                                     + 5.0 * F["modem_off_ma"] / 3600 + _floor_mah(5.0), abs=1e-4)


def test_a_deep_sleep_is_charged_at_its_current_and_each_wake_a_board_s_boot():
    # an hour in deep sleep, the timer's reboot, 0.1 s of the app before it light-sleeps
    tl = [(0.0, "mcu", "deep_sleep"), (0.0, "modem", "off"), (0.0, "gnss", "off"), (0.0, "display", "off"),
          (0.0, "vibration", "off"), (3600.0, "mcu", "active"), (3600.1, "mcu", "light_sleep")]
    r = power_model.integrate(tl, [], 0.0, 3600.5, tls=False)
    assert r["counts"]["deep_sleep_wakes"] == 1 and r["counts"]["tick_wakes"] == 1
    items = r["by_item_mah"]
    assert items["esp32 deep sleep"] == pytest.approx(F["esp32_deep_sleep_ma"], abs=1e-5)
    assert items["esp32 boot from deep sleep"] == pytest.approx(F["esp32_boot_s"] * F["esp32_active_ma"] / 3600,
                                                               abs=1e-5)
    assert r["not_deep_s"] == pytest.approx(0.5)   # the 500 ms tick runs only out of deep sleep


def test_a_check_in_counts_its_at_exchanges_bursts_tail_and_tls_handshake():
    tl = [(0.0, "mcu", "active"), (0.0, "modem", "off"), (0.0, "gnss", "off"), (0.0, "display", "off"),
          (0.0, "vibration", "off"),
          (10.0, "modem", "booting"), (21.0, "modem", "searching"), (24.0, "modem", "idle"),
          (25.0, "air", "burst"), (26.0, "air", "burst"), (40.0, "modem", "off")]
    ats = [(21.5, "AT+CREG?"), (24.2, "AT+NETOPEN"), (24.5, 'AT+CIPOPEN=0,"TCP","127.0.0.1",1883'),
           (25.0, "AT+CIPSEND=0,20"), (39.0, "AT+CPOF")]
    r = power_model.integrate(tl, ats, 0.0, 40.0)
    c = r["counts"]
    assert (c["modem_power_ons"], c["at_exchanges"], c["connections"], c["air_bursts"]) == (1, 5, 1, 2)
    items = r["by_item_mah"]
    # connected from the first burst until 10 s after the last: 25 .. 36
    assert items["modem RRC connected tail"] == pytest.approx(
        11.0 * (F["modem_connected_ma"] - F["modem_idle_ma"]) / 3600, abs=1e-5)
    assert items["modem booting"] == pytest.approx(11.0 * F["modem_booting_ma"] / 3600, abs=1e-5)
    assert items["modem searching"] == pytest.approx(3.0 * F["modem_searching_ma"] / 3600, abs=1e-5)
    assert items["modem idle"] == pytest.approx(16.0 * F["modem_idle_ma"] / 3600, abs=1e-5)
    # the MCU stayed awake through the session: charged by its time, not as a tick
    assert items["esp32 active (sessions)"] == pytest.approx(40.0 * F["esp32_active_ma"] / 3600, abs=1e-5)
    assert "TLS handshakes" in items
    assert power_model.integrate(tl, ats, 0.0, 40.0, tls=False)["mah"] < r["mah"]


def test_the_meter_records_only_changes_and_bursts():
    clock = [0.0]
    m = Meter(lambda: clock[0])
    m.record_timeline()
    clock[0] = 1.0
    m.set("modem", "booting")
    m.set("modem", "booting")  # hwsim re-asserts states on every tick
    clock[0] = 2.0
    m.transmit()
    assert [e for e in m.timeline if e[0] > 0] == [(1.0, "modem", "booting"), (2.0, "air", "burst")]


def test_standby_days_divides_the_usable_charge_by_a_day_s_use():
    cycle = {"mah": 1.0, "span_s": 60.0}
    idle = {"average_ma": 1.0}
    per_day = 24 * (1.0 + 1.0 * (3600 - 60) / 3600)
    assert power_model.standby_days(600.0, cycle, idle, 3600) == pytest.approx(
        600 * F["usable_capacity_pct"] / 100 / per_day)
