# Parsers for modem AT responses. Pure functions over text lines so that every
# modem family's quirks can be pinned by tests; each returns None when the line
# is not what it expects (garbage, a URC, an older firmware's variant).


def _fields(line, prefix):
    # "+CSQ: 20,99" -> ["20", "99"]; tolerates "+CPIN:READY" (no space)
    if not line.startswith(prefix):
        return None
    rest = line[len(prefix):].strip()
    return [f.strip().strip('"') for f in rest.split(",")]


def _int(s, base=10):
    try:
        return int(s, base)
    except (ValueError, TypeError):
        return None


def find(lines, prefix):
    for line in lines:
        if line.startswith(prefix):
            return line
    return None


def cpin_ready(line):
    f = _fields(line, "+CPIN:")
    return bool(f) and f[0] == "READY"


def csq_dbm(line):
    f = _fields(line, "+CSQ:")
    if not f:
        return None
    n = _int(f[0])
    if n is None or n == 99 or n < 0 or n > 31:
        return None
    return -113 + 2 * n


def reg_kind(line):
    # Which registration a +CREG (circuit: GSM, WCDMA), +CGREG (packet: GPRS,
    # WCDMA) or +CEREG (LTE) line is about: 0, 1, 2; None for any other line.
    if line.startswith("+CREG:"):
        return 0
    if line.startswith("+CGREG:"):
        return 1
    if line.startswith("+CEREG:"):
        return 2
    return None


def cereg_stat(line, query=True):
    # Query answer "+CEREG: <n>,<stat>[,...]"; URC "+CEREG: <stat>[,...]"
    # (the same for +CREG and +CGREG).
    k = reg_kind(line)
    if k is None:
        return None
    f = _fields(line, line[:line.index(":") + 1])
    if not f:
        return None
    if query:
        return _int(f[1]) if len(f) >= 2 else None
    return _int(f[0])


def registered(stat):
    return stat in (1, 5)  # home, roaming


def _dbm(v):
    # A power in dBm, or None: never a wrong figure, never outside the
    # contract's -150..0 (cloud/protocol.py; the cloud would refuse the report).
    return v if v is not None and -150 <= v <= 0 else None


def _report(v, top):
    # A 3GPP report value 0..top, or None (255 and anything else: unknown).
    return v if v is not None and 0 <= v <= top else None


def cpsi_lte_signal(f, family):
    # (RSRQ dB, RSRP dBm, RSSI dBm) of a +CPSI LTE line's fields, each or None.
    # SIM7600 manual (AT+CPSI): tenths, "-94,-850,-545" is -9.4 dB, -85 dBm,
    # -54.5 dBm. A76XX manual (AT+CPSI): 3GPP report values, 255 unknown:
    # RSRQ 0..34 is value/2 - 20 dB, RSRP 0..97 is value - 140 dBm, RSSI
    # 0..76 is value - 101 dBm (TS 36.133 RSSI report mapping).
    if len(f) < 13:
        return None, None, None
    q, p, s = _int(f[10]), _int(f[11]), _int(f[12])
    if family == "A7670":
        q, p, s = _report(q, 34), _report(p, 97), _report(s, 76)
        return (None if q is None else q / 2 - 20, None if p is None else p - 140,
                None if s is None else s - 101)
    # tenths; -32768 and other out-of-range fillers are unknown
    return (None if q is None or not -400 <= q <= 0 else q / 10,
            _dbm(None if p is None else int(p / 10)), _dbm(None if s is None else int(s / 10)))


def cpsi(line, family="SIM7600"):
    # The serving cell of a +CPSI answer, in the dialect of the modem's family
    # (the Modem knows it from AT+CGMM):
    # +CPSI: LTE,Online,208-01,0x3039,67890,262,EUTRAN-BAND3,1300,5,5,-94,-850,-545,15   (SIM7600)
    # +CPSI: LTE,Online,460-01,0x230A,175499523,318,EUTRAN-BAND3,1650,5,0,21,67,255,19  (A76XX)
    # +CPSI: GSM,Online,460-00,0x182d,12401,27 EGSM 900,-64,2110,42-42  (RxLev dBm)
    # +CPSI: WCDMA,Online,001-01,0xC6BD,1234567,WCDMA IMT 2000,437,10687,0,-3,-83,-32768,-83,-15
    #   (PSC, UARFCN, SSC, Ec/Io, RSCP, Qual, RxLev dBm, TX power)
    # +CPSI: NO SERVICE,Online
    f = _fields(line, "+CPSI:")
    if not f or len(f) < 5:
        return None
    rat = f[0]
    plmn = f[2].split("-")
    if len(plmn) != 2:
        return None
    mcc, mnc = _int(plmn[0]), _int(plmn[1])
    lac = _int(f[3][2:], 16) if f[3][:2].lower() == "0x" else _int(f[3])
    cid = _int(f[4])
    if cid is None and f[4][:2].lower() == "0x":
        cid = _int(f[4][2:], 16)
    if mcc is None or mnc is None:
        return None
    if cid is not None and cid < 0:
        cid = None  # a WCDMA cell id printed as a negative 32-bit number: unknown, not a wrong one
    rssi = None
    if rat == "LTE":
        rssi = cpsi_lte_signal(f, family)[2]
    elif rat == "GSM" and len(f) >= 7:
        rssi = _dbm(_int(f[6]))
    elif rat == "WCDMA" and len(f) >= 13:
        rssi = _dbm(_int(f[12]))
    return {"mcc": mcc, "mnc": mnc, "lac": lac, "cid": cid, "rssi": rssi, "rat": rat,
            "op": plmn[0] + plmn[1]}


def _deg(text, hemi, degree_digits):
    # Accept both "4545.840000" (NMEA ddmm.mmmm, SIM7600) and "45.764000" (A76xx).
    try:
        v = float(text)
    except ValueError:
        return None
    if v != v or not -18100 < v < 18100:  # NaN, "1E999" or no coordinate at all
        return None
    intpart = text.split(".")[0].lstrip("-")
    if len(intpart) > degree_digits:
        d = int(v / 100)
        v = d + (v - d * 100) / 60
    if hemi == "S" or hemi == "W":
        v = -v
    return v


def days_from_civil(y, m, d):
    # Unix day number of a date; the board's own epoch is not 1970, so no mktime.
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def cgnssinfo(line):
    # SIM7600: +CGNSSINFO: 2,06,03,00,4545.840000,N,00450.142000,E,221125,061436.0,170.0,0.0,0.0,1.3,1.0,0.9
    # A7670:   +CGNSSINFO: 3,07,03,02,01,45.7640000,N,4.8357000,E,221125,061436.00,170.0,0.000,,1.30,0.90,1.20,13
    # No fix: "+CGNSSINFO: ,,,,,,,,,,,,,,," (or 17 commas) -> None
    f = _fields(line, "+CGNSSINFO:")
    if not f:
        return None
    i = None
    for k in range(1, len(f)):
        if f[k] == "N" or f[k] == "S":
            i = k
            break
    if i is None or i + 4 >= len(f):
        return None
    lat = _deg(f[i - 1], f[i], 2)
    lon = _deg(f[i + 1], f[i + 2], 3)
    if lat is None or lon is None:
        return None
    sats = 0
    for s in f[1:i - 1]:
        sats += _int(s) or 0
    ts = None
    date, tm = f[i + 3], f[i + 4]
    if len(date) == 6 and len(tm) >= 6:
        d, mo, y = _int(date[0:2]), _int(date[2:4]), _int(date[4:6])
        hh, mi, ss = _int(tm[0:2]), _int(tm[2:4]), _int(tm[4:6])
        if None not in (d, mo, y, hh, mi, ss):
            ts = days_from_civil(2000 + y, mo, d) * 86400 + hh * 3600 + mi * 60 + ss
    # HDOP sits seven fields after E/W in both layouts (A76xx adds a satellite
    # count after VDOP, so counting from the end would pick VDOP there).
    hdop = None
    if len(f) > i + 9:
        try:
            hdop = float(f[i + 9])
        except ValueError:
            pass
    # 1-sigma radius: HDOP times a typical user range error of 5 m.
    acc = round(hdop * 5, 1) if hdop is not None else None
    return {"lat": round(lat, 6), "lon": round(lon, 6), "acc": acc, "src": "gnss",
            "ts": ts, "sats": sats}


def cclk(line):
    # +CCLK: "25/11/22,06:14:36+04" (quarter hours from UTC) -> unix seconds
    f = _fields(line, "+CCLK:")
    if not f or len(f) < 2:
        return None
    date, tm = f[0], f[1]
    try:
        y, mo, d = [int(x) for x in date.split("/")]
        tz = 0
        for sign in "+-":
            if sign in tm:
                tm, q = tm.split(sign)
                tz = int(q) * (1 if sign == "+" else -1)
        hh, mi, ss = [int(x) for x in tm.split(":")]
    except ValueError:
        return None
    if y < 24 or y >= 80:  # the modem's default clock (2000 or 1980): never set
        return None
    return days_from_civil(2000 + y, mo, d) * 86400 + hh * 3600 + mi * 60 + ss - tz * 900


def cclk_zone(line):
    # +CCLK: "25/11/22,06:14:36+04" -> 4: quarter hours east of UTC (none given: 0)
    f = _fields(line, "+CCLK:")
    tm = f[1] if f and len(f) > 1 else ""
    for sign in "+-":
        if sign in tm:
            q = _int(tm.split(sign)[1]) or 0
            return q if sign == "+" else -q
    return 0


def cops_list(line):
    # +COPS: (2,"Orange F","Orange","20801",7),(1,"SFR","SFR","20810",7),,(0,1,2,3,4),(0,1,2)
    # -> [("20801", 2), ("20810", 1)] in the modem's order; stat 3 (forbidden) left out.
    if not line.startswith("+COPS:"):
        return []
    out = []
    for part in line[6:].split("("):
        f = [x.strip().strip('"') for x in part.rstrip("), ").split(",")]
        if len(f) < 4:
            continue
        stat, plmn = _int(f[0]), f[3]
        if stat is None or stat == 3 or not plmn.isdigit() or len(plmn) not in (5, 6):
            continue
        out.append((plmn, stat))
    return out


def clip_number(line):
    # +CLIP: "+33611111111",145,"",0,"",0 -> "+33611111111"
    f = _fields(line, "+CLIP:")
    if not f or not f[0]:
        return None
    return f[0]


def cmti_index(line):
    # +CMTI: "SM",3 -> 3
    f = _fields(line, "+CMTI:")
    if not f or len(f) < 2:
        return None
    return _int(f[1])
