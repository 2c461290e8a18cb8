"""hwsim's device model on its own (CPython, no firmware): the modem's AT
dialects and timings, the radio world, GNSS starts, energy and the battery."""
from __future__ import annotations

import math

import pytest

from hwsim import traces
from hwsim.energy import Meter, standby_days
from hwsim.events import Recorder
from hwsim.modem import ModemEmulator
from hwsim.scenario import CellSpec, HoleSpec, ModemSpec, OperatorSpec, ScenarioError, Waypoint, WorldSpec, load, parse
from hwsim.world import World


class ManualRecorder(Recorder):
    def __init__(self):
        super().__init__()
        self.t = 0.0

    def now(self) -> float:
        return self.t


def modem(family="SIM7600", world: WorldSpec | None = None, **spec):
    rec = ManualRecorder()
    w = World(world or WorldSpec(), rec.now)
    m = ModemEmulator(w, ModemSpec(family=family, **spec), rec)
    m.powered_at = 0.0
    return m, rec


def test_deaf_for_eleven_seconds_then_registers_seconds_later():
    m, rec = modem()
    rec.t = 10.9
    assert not m.booted() and m.reg_stat() == 0
    rec.t = 11.0
    assert m.booted() and m.reg_stat() == 2
    rec.t = 14.1
    assert m.registered()
    assert m.answer("AT+CEREG?") == ["+CEREG: 0,1", "OK"]
    assert m.duration("AT+COPS=?") == 25.0 and m.duration("AT") < 0.1


# SIM7600 manual: RSRQ, RSRP, RSSI in tenths; A76XX manual: 3GPP report values
# (RSRQ (v/2 - 20) dB, RSRP (v - 140) dBm, RSSI (v - 101) dBm): -9.5 dB, -105 dBm, -85 dBm.
@pytest.mark.parametrize("family,rsrp", [("SIM7600", ",-95,-1050,-850,"), ("A7670", ",21,35,16,")])
def test_cpsi_signal_units_by_family(family, rsrp):
    m, rec = modem(family)
    rec.t = 20
    assert rsrp in m.answer("AT+CPSI?")[0]
    assert m.answer("AT+CGMM")[0].startswith("SIMCOM_SIM7600" if family == "SIM7600" else "A7670")


def test_gnss_commands_and_layouts_differ_by_family():
    m, rec = modem("SIM7600", ttff_s=None)
    rec.t = 20
    assert m.answer("AT+CGNSSPWR=1") == ["ERROR"]
    assert m.answer("AT+CGPS=1") == ["OK"]
    assert m.answer("AT+CGNSSINFO")[0] == "+CGNSSINFO: " + "," * 15  # cold: nothing yet
    rec.t = 20 + 35
    line = m.answer("AT+CGNSSINFO")[0]
    assert "4545.840000,N,00450.142000,E" in line and len(line.split(",")) == 16
    a, rec2 = modem("A7670")
    rec2.t = 20
    assert a.answer("AT+CGPS=1") == ["ERROR"] and a.answer("AT+CGNSSPWR=1") == ["OK"]
    assert a.answer("AT+CGNSSINFO")[0] == "+CGNSSINFO: " + "," * 17
    rec2.t = 60
    line = a.answer("AT+CGNSSINFO")[0]
    assert "45.7640000,N,4.8357000,E" in line and len(line.split(",")) == 18


def test_time_to_first_fix_cold_warm_hot():
    m, rec = modem()
    rec.t = 20
    m.answer("AT+CGPS=1")
    assert m.ttff() == 35.0
    rec.t = 60
    m.answer("AT+CGNSSINFO")  # fixes, and remembers when
    m.answer("AT+CGPS=0")
    rec.t = 120
    m.answer("AT+CGPS=1")
    assert m.ttff() == 1.0  # hot
    m.answer("AT+CGPS=0")
    rec.t = 60 + 3600
    m.answer("AT+CGPS=1")
    assert m.ttff() == 5.0  # warm
    m.answer("AT+CGPS=0")
    rec.t = 60 + 5 * 3600
    m.answer("AT+CGPS=1")
    assert m.ttff() == 35.0  # cold again


def test_no_fix_indoors():
    m, rec = modem(world=WorldSpec(indoors=True))
    rec.t = 20
    m.answer("AT+CGPS=1")
    rec.t = 200
    assert not m.has_fix()


def test_profile_apn_rejected_by_the_network():
    world = WorldSpec(operators=[OperatorSpec(208, 1, "Orange F", apns=["iot.good"])])
    m, rec = modem(world=world)
    rec.t = 20
    m.answer('AT+CGDCONT=1,"IP","iot.bad"')
    assert m.answer('AT+COPS=1,2,"20801"') == ["+CME ERROR: 111"]
    assert m.reg_stat() == 3
    m.answer('AT+CGDCONT=1,"IP","iot.good"')
    assert m.answer('AT+COPS=1,2,"20801"') == ["OK"]
    assert '"20801"' in m.answer("AT+COPS?")[0]


def test_cops_scan_lists_every_operator_heard():
    world = WorldSpec(cells=[CellSpec(208, 1, cid=1, rssi=-70, lat=45.764, lon=4.836),
                             CellSpec(208, 10, cid=2, rssi=-75, lat=45.765, lon=4.837)],
                      operators=[OperatorSpec(208, 1, "Orange F"), OperatorSpec(208, 10, "SFR")])
    m, rec = modem(world=world)
    rec.t = 20
    line = m.answer("AT+COPS=?")[0]
    assert '"Orange F"' in line and '"20810"' in line


def test_signal_falls_with_distance_and_holes_silence_everything():
    spec = WorldSpec(lat=45.0, lon=4.0, cells=[CellSpec(rssi=-60, lat=45.0, lon=4.0)],
                     holes=[HoleSpec(45.01, 4.0, 50, "cellar")])
    rec = ManualRecorder()
    w = World(spec, rec.now)
    near = w.heard()[0].rssi
    w.lat = 45.005
    far = w.heard()[0].rssi
    assert near == -60 and far < near - 20  # 556 m: 26 dB at exponent 3.5
    w.lat = 45.01
    assert w.heard() == [] and w.in_hole()


def test_route_is_interpolated():
    spec = WorldSpec(route=[Waypoint(0, 45.0, 4.0), Waypoint(100, 46.0, 4.0, indoors=True)])
    rec = ManualRecorder()
    w = World(spec, rec.now)
    rec.t = 50
    lat, lon, indoors = w.position()
    assert math.isclose(lat, 45.5) and not indoors
    rec.t = 200
    assert w.position()[2] is True


def test_calls_ring_with_caller_id_and_end():
    m, rec = modem()
    rec.t = 20
    out = []
    m._urc = out.append
    m.incoming_call("+33611111111")
    m._unsolicited()
    assert "RING" in out and '+CLIP: "+33611111111",145,"",0,"",0' in out
    assert m.answer("ATA") == ["OK", "VOICE CALL: BEGIN"]
    rec.t = 32
    m.remote_hangup()
    assert out[-1] == "VOICE CALL: END: 000012"
    assert m.answer("ATD+33400000000;") == ["OK"]
    assert m.answer("ATH") == ["OK"] and m.call is not None  # AT+CVHU=1, the default: ATH leaves it
    m.answer("AT+CHUP")
    assert out[-1] == "NO CARRIER" and m.call is None
    m.answer("ATD+33400000000;")
    m.answer("AT+CVHU=0")
    m.answer("ATH")
    assert m.call is None


def test_cops_auto_answers_at_once_and_registration_comes_as_urcs_of_its_rat():
    world = WorldSpec(cell=CellSpec(208, 1, rat="GSM", rssi=-70))  # 2G only: a GSM fallback
    m, rec = modem(world=world)
    out = []
    m._urc = out.append
    rec.t = 11.5
    for cmd in ("AT+CREG=1", "AT+CGREG=1", "AT+CEREG=1"):
        assert m.answer(cmd) == ["OK"]
    assert m.duration("AT+COPS=0") < 0.1 and m.answer("AT+COPS=0") == ["OK"]
    assert m.answer("AT+CREG?") == ["+CREG: 1,2", "OK"]  # searching yet
    m.banner_sent = True
    m._unsolicited()
    assert {"+CREG: 2", "+CGREG: 2", "+CEREG: 2"} <= set(out)
    rec.t = 15
    m._unsolicited()
    assert "+CREG: 1" in out and "+CGREG: 1" in out and "+CEREG: 0" in out  # not LTE
    assert m.answer("AT+CEREG?") == ["+CEREG: 1,0", "OK"]
    assert m.answer("AT+CPSI?")[0] == "+CPSI: GSM,Online,208-01,0x3039,67890,27 EGSM 900,-70,2110,42-42"
    assert m.duration("AT+COPS=?") == 25.0  # the manuals' maximum is 180 s


def test_wcdma_cell_on_the_sim7600_only():
    world = WorldSpec(cell=CellSpec(208, 1, rat="WCDMA", rssi=-80))
    m, rec = modem(world=world)
    rec.t = 20
    assert m.answer("AT+CPSI?")[0].startswith("+CPSI: WCDMA,Online,208-01,0x3039,67890,WCDMA IMT 2000,")
    assert ",-80,-15" in m.answer("AT+CPSI?")[0]  # RxLev, TX power
    a, rec2 = modem("A7670", world=world)  # LTE Cat 1 with GSM fallback: no WCDMA radio
    rec2.t = 20
    assert a.reg_stat() == 2 and a.answer("AT+CPSI?")[0] == "+CPSI: NO SERVICE,Online"


def test_a7670e_lase_has_no_gnss():
    m, rec = modem("A7670", model="A7670E-LASE")
    rec.t = 20
    assert m.answer("AT+CGMM") == ["A7670E-LASE", "OK"]
    assert m.answer("ATI")[1] == "Model: A7670E-LASE"
    assert m.answer("AT+CGNSSPWR=1") == ["ERROR"] and m.answer("AT+CGNSSINFO") == ["ERROR"]
    f, rec2 = modem("A7670")
    rec2.t = 20
    assert f.answer("AT+CGMM") == ["A7670E-FASE", "OK"] and f.answer("AT+CGNSSPWR=1") == ["OK"]


def test_interleaved_urcs_ride_inside_answers_seeded():
    answers = []
    for _ in range(2):
        m, rec = modem(urc_interleave_seed=7)
        rec.t = 20
        written = []
        m._write_urc = written.append
        for i in range(6):
            m._urc(f"RING{i}")
        got = m._with_held(m.answer("AT+CPSI?"))
        assert got[-1] == "OK" and sum(1 for ln in got if ln.startswith("RING")) + len(written) == 6
        answers.append((got, written))
    assert answers[0] == answers[1]  # the same seed, the same interleaving
    assert any(ln.startswith("RING") for ln in answers[0][0])


def test_emergency_number_without_registration():
    world = WorldSpec(operators=[OperatorSpec(208, 1, apns=["nobody"])])
    m, rec = modem(world=world)
    rec.t = 20
    m.answer('AT+CGDCONT=1,"IP","mine"')
    assert not m.registered()
    assert m.answer("ATD+33400000000;") == ["NO CARRIER"]
    assert m.answer("ATD112;") == ["OK"]


def test_sms_and_reboot():
    m, rec = modem()
    rec.t = 20
    out = []
    m._urc = out.append
    m.incoming_sms("+33611111111", "hello")
    assert out == ['+CMTI: "SM",1']
    assert m.answer("AT+CMGR=1")[1] == "hello"
    m.reboot()
    assert not m.booted() and m.sms == {} and m.echo


def test_energy_integrates_per_part_and_drains_the_battery():
    rec = ManualRecorder()
    meter = Meter(rec.now, capacity_mah=600, start_pct=100)
    meter.set("mcu", "light_sleep")
    rec.t = 3600
    assert math.isclose(meter.used(), 0.8 + 0.02 + 0.001, rel_tol=1e-6)  # mcu + modem off + PPG shut down
    meter.set("modem", "idle")
    rec.t = 7200
    assert math.isclose(meter.report()["by_part_mah"]["modem"], 0.02 + 23, rel_tol=1e-6)
    assert meter.battery()["pct"] == 95
    days = standby_days(600, cycle_mah=0.2, cycle_s=20, sleep_ma=0.83, heartbeat_s=3600)
    assert 20 < days < 30


def test_traces_are_labelled_and_reproducible():
    for label in traces.FALLS + traces.ACTIVITIES:
        a, b = traces.generate(label, 3), traces.generate(label, 3)
        assert a == b and len(a) > 2 * traces.HZ
    with pytest.raises(ValueError):
        traces.generate("moonwalk")


def test_scenario_errors_are_clear():
    with pytest.raises(ScenarioError, match="speed"):
        parse({"speed": 1000})
    with pytest.raises(ScenarioError, match="family"):
        parse({"modem": {"family": "SIM800"}})
    with pytest.raises(ScenarioError, match="nothing happens"):
        parse({"timeline": [{"at": 1}]})
    with pytest.raises(ScenarioError, match="expects nothing"):
        parse({"expect": [{"within": 1}]})
    with pytest.raises(ScenarioError, match="after"):
        parse({"expect": [{"display": "Ready", "after": 10, "within": 5}]})


def test_factory_reset_action_and_expectations_after_a_time():
    s = parse({"timeline": [{"at": 60, "factory_reset": True}],
               "expect": [{"display": "Help is coming", "after": 90, "within": 150}]})
    assert s.timeline[0].factory_reset and s.timeline[0].does_something()
    exp = s.expect[0]
    assert not exp.matches({"t": 30.0, "type": "display", "text": "Help is coming"})  # the first alarm's
    assert exp.matches({"t": 95.0, "type": "display", "text": "Help is coming"})
    assert exp.describe() == 'display "Help is coming" after 90s within 150s'


def test_bundled_scenarios_load():
    from hwsim.scenario import SCENARIO_DIR
    for path in SCENARIO_DIR.glob("*.toml"):
        s = load(path.stem)
        assert s.expect, path


def test_gilbert_elliott_loss_is_bursty_and_seeded():
    from hwsim.link import GilbertElliott
    ch = GilbertElliott(loss=0.2, burst=3.0, seed=11)
    seq = [ch.lost() for _ in range(200_000)]
    assert abs(sum(seq) / len(seq) - 0.2) < 0.01
    bursts, run = [], 0
    for lost in seq:
        if lost:
            run += 1
        elif run:
            bursts.append(run)
            run = 0
    assert abs(sum(bursts) / len(bursts) - 3.0) < 0.15  # losses come in bursts, not alone
    again = GilbertElliott(loss=0.2, burst=3.0, seed=11)
    assert [again.lost() for _ in range(1000)] == seq[:1000]
    assert not any(GilbertElliott(0.0).lost() for _ in range(1000))


def test_tcp_over_the_lossy_link_delays_then_gives_up():
    from hwsim.link import AirLink
    from hwsim.scenario import LinkSpec
    rec = Recorder()
    clean = AirLink(rec, lambda: True, loss=LinkSpec(loss=0.0))
    assert clean.transmit(3000) == 0.0 and clean.segments == 3
    lossy = AirLink(rec, lambda: True, loss=LinkSpec(loss=0.3, burst=2.0, seed=5))
    delays = [lossy.transmit(200) for _ in range(2000)]
    assert all(d is None or d in (0, 1, 3, 7, 15, 31, 63) for d in delays)  # RTO 1 s, doubling
    assert lossy.retransmits > 0 and max(d for d in delays if d is not None) >= 3
    dead = AirLink(rec, lambda: True, loss=LinkSpec(loss=1.0, max_retries=4))
    assert dead.transmit(100) is None and dead.retransmits == 4


def _ppg_world(hr=72, contact=True):
    clock = [0.0]
    world = World(WorldSpec(hr=hr, skin_contact=contact), lambda: clock[0])
    return world, clock


def test_max30102_registers_fifo_and_pulse():
    from hwsim.i2c import I2CBus, Max30102
    world, clock = _ppg_world(hr=60)
    dev = Max30102(world, lambda: clock[0], seed=2)
    bus = I2CBus(Recorder(), {0x57: dev})
    assert bus.transfer("R 87 255 1") == "15"           # part id
    assert bus.transfer("R 88 255 1") == "NACK"         # nobody at 0x58
    for reg, val in ((0x08, 0x50), (0x0A, 0x27), (0x0C, 0x24), (0x0D, 0x24), (0x09, 0x03)):
        assert bus.transfer(f"W 87 {reg} {val:02x}") == "OK"
    assert dev.rate_hz() == 25
    clock[0] = 0.8                                       # 20 samples at 25 Hz
    assert int(bus.transfer("R 87 4 1"), 16) == 20 and int(bus.transfer("R 87 6 1"), 16) == 0
    clock[0] = 3.0                                       # 75 made: the FIFO (32) rolled over
    assert int(bus.transfer("R 87 5 1"), 16) > 0
    ir = []
    raw = bytes.fromhex(bus.transfer(f"R 87 7 {6 * 32}"))
    ir += [int.from_bytes(raw[i + 3:i + 6], "big") for i in range(0, len(raw), 6)]
    assert int(bus.transfer("R 87 4 1"), 16) == int(bus.transfer("R 87 6 1"), 16)  # drained
    for k in range(1, 200):                              # 8 s more, read every 0.4 s
        clock[0] = 3.0 + 0.04 * k
        if k % 10 == 0:
            wr, rd = int(bus.transfer("R 87 4 1"), 16), int(bus.transfer("R 87 6 1"), 16)
            n = (wr - rd) & 0x1F
            raw = bytes.fromhex(bus.transfer(f"R 87 7 {6 * n}"))
            ir += [int.from_bytes(raw[i + 3:i + 6], "big") for i in range(0, len(raw), 6)]
    assert all(100_000 < v < 130_000 for v in ir)        # skin: a large steady level
    # one big swing per beat: at 60 bpm, about one per second
    mean = sum(ir) / len(ir)
    crossings = sum(1 for a, b in zip(ir, ir[1:]) if a < mean + 500 <= b)
    assert 7 <= crossings <= 10
    assert bus.transfer("W 87 9 80") == "OK" and not dev.active()  # shutdown


def test_max30102_without_skin_sees_only_ambient_light():
    from hwsim.i2c import Max30102
    world, clock = _ppg_world(contact=False)
    dev = Max30102(world, lambda: clock[0])
    dev.write(0x08, b"\x50")
    dev.write(0x0A, b"\x27")
    dev.write(0x09, b"\x03")
    clock[0] = 1.0
    raw = dev.read(0x07, 6 * 25)
    assert max(int.from_bytes(raw[i + 3:i + 6], "big") for i in range(0, len(raw), 6)) < 5000
