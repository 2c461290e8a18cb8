"""Standby from datasheets, integrated over what the firmware really did in hwsim.

hwsim's meter (hwsim/energy.py) records every change of a part's state and every
burst on the air; the standby bench also records every AT command the modem
answered. ``integrate`` charges that record with the figures below, each with its
source, and adds what hwsim does not model: the LTE radio's connected-mode tail
after data, a TLS handshake per connection, a registration as long as a real one,
the accelerometer, the regulator, leakage and the cell's own self-discharge.

Figures marked ASSUMPTION have no datasheet behind them; docs/figures.md lists
them with what would settle them (a bench measurement on the real board).
"""
from __future__ import annotations

from dataclasses import dataclass

from hwsim.bmp390 import SLEEP_MA, normal_mode_ma
from hwsim.energy import CURRENT_MA


@dataclass(frozen=True)
class Figure:
    value: float
    unit: str
    source: str


ESP32_DS = "Espressif ESP32 Series Datasheet, table 'Power consumption by power modes'"
A7670_HD = "SIMCom A7670 Series Hardware Design, 'Current consumption' table"
LIS3DH_DS = "ST LIS3DH datasheet DocID17530, table 5 'Electrical characteristics'"
BMP390_DS = "Bosch BMP390 datasheet BST-BMP390-DS002"

FIGURES: dict[str, Figure] = {
    # ESP32 (WROOM module, MicroPython's default 160 MHz)
    "esp32_active_ma": Figure(35.0, "mA", ESP32_DS + ": modem-sleep, 160 MHz, 27-44 mA; mid-range"),
    "esp32_light_sleep_ma": Figure(0.8, "mA", ESP32_DS + ": light-sleep 0.8 mA"),
    "esp32_deep_sleep_ma": Figure(0.010, "mA", ESP32_DS + ": deep-sleep, RTC timer + RTC memory, 10 uA"),
    # one 500 ms tick on the board: wake, drain 25 FIFO samples over I2C (6 bytes each at
    # 400 kHz ~0.2 ms), run the fall detector on them, asyncio's own work, back to sleep
    "esp32_wake_active_s": Figure(0.010, "s", "ASSUMPTION: 10 ms per tick (not measured on an ESP32)"),
    # a deep-sleep wake is a reboot: ROM and second-stage bootloader, MicroPython's
    # start, main.py, the app's imports, before the app runs. hwsim's meter has the
    # chip in deep sleep until the unix port says hello: the boot is charged here.
    "esp32_boot_s": Figure(0.5, "s", "ASSUMPTION: deep-sleep wake to main.py at active current (ROM, "
                           "second-stage bootloader, MicroPython's start; not measured). The app's own start "
                           "after that is in hwsim's record"),
    # A7670E
    "modem_off_ma": Figure(0.020, "mA", A7670_HD + ": power-off leakage (tens of uA)"),
    "modem_booting_ma": Figure(60.0, "mA", "ASSUMPTION: boot average, no radio"),
    "modem_searching_ma": Figure(80.0, "mA", "ASSUMPTION: cell search and attach average"),
    "modem_idle_ma": Figure(23.0, "mA", A7670_HD + ": idle, registered, UART awake (no sleep)"),
    "modem_connected_ma": Figure(90.0, "mA", "ASSUMPTION: LTE Cat-1 RRC-connected average between bursts"),
    "modem_tx_ma": Figure(500.0, "mA", A7670_HD + ": LTE data at max power (peak ~0.5 A average burst)"),
    "modem_registration_s": Figure(6.0, "s", "ASSUMPTION: LTE attach after boot, good coverage (3-30 s)"),
    "rrc_tail_s": Figure(10.0, "s", "ASSUMPTION: network RRC inactivity timer (operators set 5-20 s)"),
    "at_exchange_s": Figure(0.02, "s", "hwsim answer_delay_s: UART turnaround of an ordinary command"),
    # TLS (the firmware connects in clear today; a TLS connection adds this per connection).
    # AT sequence after the SIMCom SSL application note: AT+CSSLCFG (sslversion, authmode,
    # cacert), AT+CCHSET, AT+CCHSTART, AT+CCHSSLCFG, AT+CCHOPEN: 7 exchanges; the
    # handshake itself: 2 round trips of TLS 1.2 plus a ~3-4 KB certificate chain and
    # the modem's ECDHE P-256 (ASSUMPTION: 0.8 s connected in all).
    "tls_at_exchanges": Figure(7, "exchanges", "SIMCom A76XX SSL application note (AT+CSSLCFG ... AT+CCHOPEN)"),
    "tls_handshake_s": Figure(0.8, "s", "ASSUMPTION: 2 RTT (~100 ms each on LTE) + certificate + ECDHE"),
    # the rest of the board
    "lis3dh_ma": Figure(0.011, "mA", LIS3DH_DS + ": 11 uA at 50 Hz, normal/high-resolution mode"),
    "ldo_quiescent_ma": Figure(0.055, "mA", "AP2112K-3.3 datasheet: 55 uA quiescent (the common ESP32-board LDO)"),
    "battery_divider_ma": Figure(0.021, "mA", "ASSUMPTION: 2 x 100 kOhm VBAT sense divider at 4.2 V"),
    "board_leakage_ma": Figure(0.005, "mA", "ASSUMPTION: PCB, ESD diodes, pull-ups"),
    "max30102_off_ma": Figure(0.0007, "mA", "Maxim MAX30102 datasheet: 0.7 uA shutdown"),
    # the optional barometer, charged only on a board that has one (hwsim's [board] barometer)
    "bmp390_normal_ma": Figure(round(normal_mode_ma(1, 0, 6.25), 6), "mA", BMP390_DS
                               + ": 3.2 uA at 1 Hz x1/x1 and 1.4 uA asleep give 373 uA while measuring; x2/x1 "
                               "T_conv 6.85 ms (3.9.2) at 6.25 Hz (hal/bmp390.py). ASSUMPTION: standby = sleep"),
    "bmp390_sleep_ma": Figure(SLEEP_MA, "mA", BMP390_DS + ", Table 1: 1.4 uA sleep"),
    "lipo_self_discharge_pct_month": Figure(3.0, "%/month", "ASSUMPTION: Li-ion/LiPo 2-3 %/month at 20 C"),
    "usable_capacity_pct": Figure(90.0, "%", "ASSUMPTION: the A7670 needs VBAT >= 3.4 V (" + A7670_HD
                                  + "): the last ~10 % of a LiPo is below it under TX load"),
}


def _v(name: str, over: dict[str, float] | None) -> float:
    return (over or {}).get(name, FIGURES[name].value)


FLOOR_PARTS = ("lis3dh_ma", "ldo_quiescent_ma", "battery_divider_ma", "board_leakage_ma", "max30102_off_ma")


def floor_ma(capacity_mah: float, over: dict[str, float] | None = None) -> dict[str, float]:
    """Currents that flow whatever the firmware does, self-discharge as a current."""
    out = {name: _v(name, over) for name in FLOOR_PARTS}
    out["lipo_self_discharge_ma"] = capacity_mah * _v("lipo_self_discharge_pct_month", over) / 100 / (30 * 24)
    return out


def integrate(timeline: list[tuple[float, str, str]], at_log: list[tuple[float, str]], t0: float, t1: float,
              capacity_mah: float = 600.0, over: dict[str, float] | None = None, tls: bool = True) -> dict:
    """Charge (mAh) of [t0, t1] of an hwsim run, by item, from the meter's timeline
    (hwsim/energy.py Meter.record_timeline) and the AT commands answered in it."""
    state: dict[str, str] = {}
    mah: dict[str, float] = {}
    counts = {"at_exchanges": 0, "light_sleeps": 0, "tick_wakes": 0, "modem_power_ons": 0, "air_bursts": 0,
              "connections": 0, "deep_sleep_wakes": 0}
    not_deep_s = 0.0  # with the modem off and the chip not in deep sleep: the 500 ms tick runs
    hwsim_tick_active_s = 0.0
    events = sorted(timeline, key=lambda e: e[0])
    for t, part, st in events:  # the state at t0
        if t > t0:
            break
        if part != "air":
            state[part] = st
    bursts: list[float] = []
    sessions: list[list[float]] = []  # [on, off] of each modem power-on
    active_since: float | None = t0 if state.get("mcu") == "active" else None
    modem_used = state.get("modem", "off") != "off"  # during the current wake
    last = t0

    def add(item: str, q: float) -> None:
        mah[item] = mah.get(item, 0.0) + q

    def charge_until(t: float) -> None:
        nonlocal not_deep_s
        dt_h = (t - last) / 3600
        mcu = state.get("mcu")
        if mcu != "deep_sleep" and state.get("modem", "off") == "off":
            not_deep_s += t - last
        if mcu == "light_sleep":
            add("esp32 light sleep", _v("esp32_light_sleep_ma", over) * dt_h)
        elif mcu == "deep_sleep":
            add("esp32 deep sleep", _v("esp32_deep_sleep_ma", over) * dt_h)
        modem = state.get("modem", "off")
        add(f"modem {modem}", _state_ma(modem, over) * dt_h)
        for part in ("gnss", "display", "vibration"):  # no datasheet of their own here: hwsim's figures
            add(f"{part} (hwsim figures)", CURRENT_MA[part][state.get(part, "off")] * dt_h)
        baro = state.get("baro", "absent")
        if baro != "absent":
            add("bmp390 barometer", _v(f"bmp390_{baro}_ma", over) * dt_h)

    for t, part, st in events:
        if t <= t0:
            continue
        if t > t1:
            break
        charge_until(t)
        last = t
        if part == "air":
            bursts.append(t)
            counts["air_bursts"] += 1
            continue
        prev = state.get(part)
        state[part] = st
        if part == "modem":
            modem_used = modem_used or st != "off"
            if prev == "off" and st != "off":
                counts["modem_power_ons"] += 1
                sessions.append([t, t1])
            elif st == "off" and prev not in (None, "off") and sessions:
                sessions[-1][1] = t
        if part == "mcu":
            if st == "active" and prev == "deep_sleep":
                counts["deep_sleep_wakes"] += 1
            if st == "active":
                active_since = t
                modem_used = state.get("modem", "off") != "off"
            elif active_since is not None:
                # a wake with the modem off (the 500 ms tick, the minute's battery check) is
                # charged at the board's own time per wake: the unix port's host time times
                # the clock speed says nothing about an ESP32's
                if st == "light_sleep":
                    counts["light_sleeps"] += 1
                if not modem_used:
                    counts["tick_wakes"] += 1
                    hwsim_tick_active_s += t - active_since
                else:
                    add("esp32 active (sessions)", _v("esp32_active_ma", over) * (t - active_since) / 3600)
                active_since = None
    charge_until(t1)
    if active_since is not None:
        add("esp32 active (sessions)", _v("esp32_active_ma", over) * (t1 - active_since) / 3600)
    add("esp32 active (wakes)",
        counts["tick_wakes"] * _v("esp32_wake_active_s", over) * _v("esp32_active_ma", over) / 3600)

    add("esp32 boot from deep sleep",
        counts["deep_sleep_wakes"] * _v("esp32_boot_s", over) * _v("esp32_active_ma", over) / 3600)

    ats = [t for t, _cmd in at_log if t0 < t <= t1]
    counts["at_exchanges"] = len(ats)
    counts["connections"] = sum(1 for t, cmd in at_log if t0 < t <= t1 and _opens_connection(cmd))
    # every AT exchange: its turnaround with the modem awake (beyond its idle draw)
    add("modem AT exchanges", len(ats) * _v("at_exchange_s", over)
        * (_v("modem_connected_ma", over) - _v("modem_idle_ma", over)) / 3600)
    # data on the air: the burst itself, then the RRC tail until the network releases
    # the radio or the modem is switched off
    tx_extra = _v("modem_tx_ma", over) - _v("modem_connected_ma", over)
    add("modem data bursts", len([b for b in bursts if t0 < b <= t1]) * 0.05 * tx_extra / 3600)
    connected_s = 0.0
    for on, off in sessions:
        ends = sorted(b for b in bursts if on <= b <= off)
        span_end = on
        for b in ends:
            start = max(b, span_end)
            end = min(off, b + _v("rrc_tail_s", over))
            if end > start:
                connected_s += end - start
                span_end = end
    add("modem RRC connected tail", connected_s * (_v("modem_connected_ma", over) - _v("modem_idle_ma", over)) / 3600)
    # a real attach takes longer than hwsim's register_s (3 s): the difference, searching
    extra_reg_s = max(0.0, _v("modem_registration_s", over) - 3.0)
    add("modem registration beyond hwsim's", counts["modem_power_ons"] * extra_reg_s
        * (_v("modem_searching_ma", over) + _v("esp32_active_ma", over)) / 3600)
    if tls:
        per = (_v("tls_handshake_s", over) * (_v("modem_connected_ma", over) + _v("esp32_active_ma", over))
               + _v("tls_at_exchanges", over) * _v("at_exchange_s", over)
               * (_v("modem_connected_ma", over) + _v("esp32_active_ma", over)))
        add("TLS handshakes", counts["connections"] * per / 3600)
    hours = (t1 - t0) / 3600
    for name, ma in floor_ma(capacity_mah, over).items():
        add(name.removesuffix("_ma").replace("_", " "), ma * hours)
    total = sum(mah.values())
    return {"mah": round(total, 5), "span_s": round(t1 - t0, 1), "by_item_mah": {k: round(v, 5) for k, v in
                                                                                 sorted(mah.items())},
            "counts": counts, "hwsim_tick_active_s": round(hwsim_tick_active_s, 3),
            "not_deep_s": round(not_deep_s, 3),
            "average_ma": round(total / hours, 4) if hours else 0.0}


def _state_ma(modem_state: str, over: dict[str, float] | None) -> float:
    name = f"modem_{modem_state}_ma"
    if name in FIGURES:
        return _v(name, over)
    if modem_state == "transmit":
        return _v("modem_tx_ma", over)
    return CURRENT_MA["modem"][modem_state]  # a call: not a standby state


def _opens_connection(cmd: str) -> bool:
    """The command that opens the broker's TCP connection (AT+CIPOPEN=...; with TLS it
    would be AT+CCHOPEN=...)."""
    return cmd.startswith("AT+CIPOPEN=") or cmd.startswith("AT+CCHOPEN=")


def standby_days(capacity_mah: float, cycle: dict, idle: dict, heartbeat_s: float,
                 over: dict[str, float] | None = None) -> float:
    """Days on one charge: each heartbeat costs one measured check-in (``cycle``,
    an integrate() result over power-on to power-off) plus the idle rate (``idle``,
    an integrate() result over time between check-ins) for the rest of the hour."""
    rest_s = max(0.0, heartbeat_s - cycle["span_s"])
    per_beat = cycle["mah"] + idle["average_ma"] * rest_s / 3600
    usable = capacity_mah * _v("usable_capacity_pct", over) / 100
    return usable / per_beat * heartbeat_s / 86400
