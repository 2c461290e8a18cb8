import mpytest
from mpytest import eq
from app import at


def test_cpin_both_forms():
    eq(at.cpin_ready("+CPIN: READY"), True)
    eq(at.cpin_ready("+CPIN:READY"), True)
    eq(at.cpin_ready("+CPIN: SIM PIN"), False)
    eq(at.cpin_ready("garbage"), False)
    eq(at.cpin_ready(""), False)


def test_csq():
    eq(at.csq_dbm("+CSQ: 14,99"), -85)
    eq(at.csq_dbm("+CSQ: 99,99"), None)
    eq(at.csq_dbm("+CSQ: x"), None)
    eq(at.csq_dbm("OK"), None)


def test_cereg_query_and_urc():
    eq(at.cereg_stat("+CEREG: 0,1"), 1)
    eq(at.cereg_stat("+CEREG: 2,5,\"3039\",\"0101A2D3\",7"), 5)
    eq(at.cereg_stat("+CEREG: 1", query=False), 1)
    eq(at.cereg_stat("+CEREG: 1"), None)  # a URC is not a query answer
    eq(at.registered(5), True)
    eq(at.registered(2), False)


def test_cpsi_lte_sim7600_tenths():
    c = at.cpsi("+CPSI: LTE,Online,208-01,0x3039,67890,262,EUTRAN-BAND3,1300,5,5,-94,-1050,-850,15")
    eq(c, {"mcc": 208, "mnc": 1, "lac": 12345, "cid": 67890, "rssi": -85, "rat": "LTE", "op": "20801"})


def test_cpsi_lte_a76xx_db():
    c = at.cpsi("+CPSI: LTE,Online,208-10,0x1A2B,123456789,77,EUTRAN-BAND20,6300,5,5,-11,-101,-72,10")
    eq((c["mnc"], c["lac"], c["cid"], c["rssi"]), (10, 0x1A2B, 123456789, -72))


def test_cpsi_values_that_are_not_dbm_are_unknown():
    # 255 is the modem's "unknown"; a positive number is a report value, not dBm.
    c = at.cpsi("+CPSI: LTE,Online,208-10,0x1A2B,123456789,77,EUTRAN-BAND20,6300,5,5,255,255,255,255")
    eq(c["rssi"], None)
    c = at.cpsi("+CPSI: LTE,Online,208-10,0x1A2B,123456789,77,EUTRAN-BAND20,6300,5,5,-11,-101,45,10")
    eq(c["rssi"], None)


def test_cpsi_gsm_and_no_service():
    c = at.cpsi("+CPSI: GSM,Online,208-01,0x182d,12401,27 EGSM 900,-64,2110,42-42")
    eq((c["rat"], c["lac"], c["cid"], c["rssi"]), ("GSM", 0x182D, 12401, -64))
    eq(at.cpsi("+CPSI: NO SERVICE,Online"), None)
    eq(at.cpsi("+CPSI: LTE,Online,garbage"), None)
    eq(at.cpsi("+CPSI: LTE,Online,2x8-01,0x3039,67890"), None)


def test_cgnssinfo_nmea_form():
    f = at.cgnssinfo("+CGNSSINFO: 2,06,03,00,4545.840000,N,00450.142000,E,221125,061436.0,170.0,0.0,0.0,1.3,1.0,0.9")
    eq(f["src"], "gnss")
    assert abs(f["lat"] - 45.764) < 1e-5 and abs(f["lon"] - 4.835700) < 1e-5, f
    eq(f["sats"], 9)
    eq(f["acc"], 5.0)
    eq(f["ts"], 1763792076)  # 2025-11-22 06:14:36 UTC


def test_cgnssinfo_decimal_form_and_hemispheres():
    f = at.cgnssinfo("+CGNSSINFO: 3,12,,02,00,33.8688000,S,151.2093000,W,230321,065245.00,62.7,0.000,,1.77,0.94,1.50")
    assert abs(f["lat"] + 33.8688) < 1e-6 and abs(f["lon"] + 151.2093) < 1e-6, f
    eq(f["sats"], 14)


def test_cgnssinfo_no_fix_and_garbage():
    eq(at.cgnssinfo("+CGNSSINFO: ,,,,,,,,,,,,,,,"), None)
    eq(at.cgnssinfo("+CGNSSINFO: ,,,,,,,,,,,,,,,,"), None)
    eq(at.cgnssinfo("+CGNSSINFO: 2,06,03,00,notanumber,N,00450.1,E,221125,061436.0"), None)
    eq(at.cgnssinfo("\x00\xffjunk"), None)


def test_cclk():
    eq(at.cclk('+CCLK: "25/11/22,06:14:36+04"'), 1763792076 - 3600)
    eq(at.cclk('+CCLK: "80/01/06,00:00:10+00"'), None)
    eq(at.cclk_zone('+CCLK: "25/11/22,06:14:36+04"'), 4)
    eq(at.cclk_zone('+CCLK: "25/11/22,01:14:36-20"'), -20)
    eq(at.cclk_zone('+CCLK: "25/11/22,06:14:36"'), 0)


def test_find_skips_urcs_and_garbage():
    lines = ["RDY", "\x7f~~", "+CEREG: 1", "+CSQ: 20,99", "OK"]
    eq(at.find(lines, "+CSQ"), "+CSQ: 20,99")
    eq(at.find(lines, "+CPSI"), None)


mpytest.run(globals())
