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
    eq(at.csq_dbm("+CSQ: ,"), None)
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


def test_cpsi_lte_sim7600_manual_example():
    # The SIM7600 manual's AT+CPSI example: tenths of dB / dBm.
    f = "+CPSI: LTE,Online,460-00,0x5A1E,187214780,257,EUTRAN-BAND3,1825,5,5,-94,-850,-545,15".split(",")
    eq(at.cpsi_lte_signal(f, "SIM7600"), (-9.4, -85, -54))
    c = at.cpsi(",".join(f))
    eq((c["mcc"], c["mnc"], c["lac"], c["cid"], c["rssi"]), (460, 0, 0x5A1E, 187214780, -54))


def test_cpsi_lte_a76xx_report_values():
    # An A76XX line (report values, 255 unknown): RSRQ 21 is -9.5 dB, RSRP 67 is
    # -73 dBm, RSSI 255 unknown.
    line = "+CPSI: LTE,Online,460-01,0x230A,175499523,318,EUTRAN-BAND3,1650,5,0,21,67,255,19"
    eq(at.cpsi_lte_signal(line.split(","), "A7670"), (-9.5, -73, None))
    c = at.cpsi(line, "A7670")
    eq((c["mcc"], c["mnc"], c["lac"], c["cid"], c["rssi"]), (460, 1, 0x230A, 175499523, None))
    # what hwsim writes for -9.5 dB, -105 dBm, -85 dBm
    line = "+CPSI: LTE,Online,208-01,0x3039,67890,262,EUTRAN-BAND20,6300,5,5,21,35,16,15"
    eq(at.cpsi_lte_signal(line.split(","), "A7670"), (-9.5, -105, -85))
    eq(at.cpsi(line, "A7670")["rssi"], -85)
    # the same line read as a SIM7600's would be wrong figures: positive "dBm" is refused
    eq(at.cpsi(line, "SIM7600")["rssi"], None)


def test_cpsi_values_that_are_not_dbm_are_unknown():
    # 255 is the A76XX's "unknown"; a positive number is no SIM7600 dBm; empty fields.
    line = "+CPSI: LTE,Online,208-10,0x1A2B,123456789,77,EUTRAN-BAND20,6300,5,5,255,255,255,255"
    eq(at.cpsi(line, "A7670")["rssi"], None)
    eq(at.cpsi_lte_signal(line.split(","), "A7670"), (None, None, None))
    eq(at.cpsi(line)["rssi"], None)
    c = at.cpsi("+CPSI: LTE,Online,208-10,0x1A2B,123456789,77,EUTRAN-BAND20,6300,5,5,-11,-101,45,10")
    eq(c["rssi"], None)
    c = at.cpsi("+CPSI: LTE,Online,208-10,0x1A2B,123456789,77,EUTRAN-BAND20,6300,5,5,,,,", "A7670")
    eq(c["rssi"], None)
    eq(at.cpsi("+CPSI: LTE,Online,208-10,0x1A2B,123456789,77,EUTRAN-BAND20,6300,5,5,,,,")["rssi"], None)
    eq(at.cpsi_lte_signal("+CPSI: LTE,Online,208-10,0x1A2B,1,77,B,1,5,5,98,35,77,1".split(","), "A7670"),
       (None, -105, None))  # out of the report ranges: unknown


def test_cpsi_wcdma_sim7600():
    # <PSC>,<Freq>,<SSC>,<EC/IO>,<RSCP>,<Qual>,<RxLev>,<TXPWR>: the RxLev, never the TX power
    c = at.cpsi("+CPSI: WCDMA,Online,001-01,0xC6BD,1234567,WCDMA IMT 2000,437,10687,0,-3,-83,-32768,-83,-15")
    eq((c["rat"], c["lac"], c["cid"], c["rssi"]), ("WCDMA", 0xC6BD, 1234567, -83))
    c = at.cpsi("+CPSI: WCDMA,Online,252-02,0x2612,-294967296,WCDMA IMT 2000,437,10687,0,-3,-83,-32768,-83,-15")
    eq(c["cid"], None)  # a negative cell id is no cell id
    c = at.cpsi("+CPSI: WCDMA,Online,001-01,0xC6BD,1234567,WCDMA IMT 2000,437,10687,0,-3,-83,-32768,-32768,-15")
    eq(c["rssi"], None)


def test_registration_of_every_domain():
    eq(at.cereg_stat("+CREG: 1,5"), 5)
    eq(at.cereg_stat("+CGREG: 1", query=False), 1)
    eq(at.cereg_stat("+CEREG: 0", query=False), 0)
    eq((at.reg_kind("+CREG: 1"), at.reg_kind("+CGREG: 1"), at.reg_kind("+CEREG: 1"), at.reg_kind("+CSQ: 1")),
       (0, 1, 2, None))


def test_cpsi_gsm_and_no_service():
    # both manuals' GSM example: the RxLev in dBm
    for family in ("SIM7600", "A7670"):
        c = at.cpsi("+CPSI: GSM,Online,460-00,0x182d,12401,27 EGSM 900,-64,2110,42-42", family)
        eq((c["rat"], c["lac"], c["cid"], c["rssi"]), ("GSM", 0x182D, 12401, -64))
    eq(at.cpsi("+CPSI: GSM,Online,460-00,0x182d,12401,27 EGSM 900,,2110,42-42")["rssi"], None)
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
