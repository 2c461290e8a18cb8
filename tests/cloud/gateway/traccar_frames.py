"""Real watch frames, as published in Traccar's decoder tests, with what each must
decode to and the reply it must draw.

Sources (Apache-2.0, https://github.com/traccar/traccar):
- 3G/SeTracker: src/test/java/org/traccar/protocol/WatchProtocolDecoderTest.java
  (expected positions from its ``position(...)`` checks; replies and the status bits
  from src/main/java/org/traccar/protocol/WatchProtocolDecoder.java: ``LK`` -> ``LK``,
  ``AL*`` -> ``AL``, bit 16 SOS, 21/22 fall, 0/17 low battery, 14 power cut, 20 removing);
- IW: src/test/java/org/traccar/protocol/TrvProtocolDecoderTest.java (its frame
  decoder strips the closing ``#``, put back here; replies from TrvProtocolDecoder.java:
  the type with AP turned to BP, ``IWBP00,<time>,<tz>#`` for the login).

Where we part from Traccar, on purpose (docs/gateway.md): a frame carrying the SOS
bit is an SOS whatever else is set (Traccar reads low battery first), and an ``AL``
frame with no reason at all is an SOS (Traccar gives no alarm).

Each 3G entry: frame, expected (type, kind, alarm, GNSS fix, lat, lon, battery, cells,
Wi-Fi APs, length field right), reply content or None."""

SETRACKER = [
    ("[3G*9031853319*004E*UD2,220322,055105,A,22.761162,N,114.360192,E,0,0,47,14,100,64,0,0,00000008,0,0]",
     ("UD2", "location", None, True, 22.761162, 114.360192, 64, 0, 0, True), None),
    ("[SG*9159059735*0066*UD2,230322,082138,A,59.55285,N,016.66185,E,0.0,000,26,14,80,70,0,50,00000000,1,1,240,7,"
     "34505,80806406,,00]",
     ("UD2", "location", None, True, 59.55285, 16.66185, 70, 1, 0, False), None),
    # The length field says 0x53 (83); the content is 86 bytes: decoded all the same.
    ("[SG*9059056143*0053*UD,251021,223408,A,41.46500,N,081.53128,W,0.926,000,0,00,70,70,0,50,00000000,0,1,,,,00]",
     ("UD", "location", None, True, 41.465, -81.53128, 70, 0, 0, False), None),
    ("[3G*2104326058*00E9*UD_LTE,300621,135101,A,32.162652,N,34.888748,E,30.84,265.158,65.621,18,100,83,0,0,"
     "00000000,1,1,425,01,10223,8012811,100,3,ES4104,22:74:1d:39:64:ff,-46,metropoline-wifi,a8:3f:a1:e0:66:ba,-89,"
     "Egged.co.il,00:0c:42:51:cf:cd,-81,1.7055488]",
     ("UD_LTE", "location", None, True, 32.162652, 34.888748, 83, 1, 3, True), None),
    # Status 00100008: taken off the wrist (bit 20), no fix: a position, replied to, no case.
    ("[3G*358839237678820*0122*ALCUSTOMER1,251120,081821,V,0.0,N,0.0,E,2.58,317.462,35.147,14,100,2,11089,0,"
     "00100008,1,1,460,01,42308,101992452,100,5,shizhou1,44:56:e2:03:ea:2a,-69,FART3,30:0d:9e:bb:fa:4d,-70,"
     "ZKY-A209,88:c3:97:c1:f4:7f,-73,ChinaNet-HNeD,e8:84:c6:21:7c:dc,-77,,30:45:96:10:14:5d,-79,1.2035439]",
     ("ALCUSTOMER1", "location", None, False, 0.0, 0.0, 2, 1, 5, False), "AL"),
    # SOS (bit 16) without a GNSS fix: seven cells, an alarm all the same.
    ("[3G*8809008845*00C0*AL,271219,094744,V,00.000000,N, 0.0000000,E,0.00,0.0,0.0,0,100,81,0,0,00010000,7,0,460,0,"
     "9336,3981,141,9336,3912,141,9336,3982,140,9765,4233,134,9765,4071,134,9765,4321,134,9336,4353,132,0,0.0]",
     ("AL", "alarm", "sos", False, 0.0, 0.0, 81, 7, 0, True), "AL"),
    ("[3G*2104134718*00A1*UD_WCDMA,161019,134938,A,43.373367,N,71.157615,W,22.0,350.206,279.717,17,28,79,0,0,"
     "00000000,1,1,310,410,23999,132013696,28,1,Home2,60:45:cb:cb:34:68,-93,8.263865]",
     ("UD_WCDMA", "location", None, True, 43.373367, -71.157615, 79, 1, 1, True), None),
    # With the optional index field (0075) between the id and the length.
    ("[ZJ*014111001332708*0075*0064*AL,040418,052156,A,22.536207,N,113.938673,E,0,0,0,5,100,82,1000,50,00100000,1,"
     "255,460,0,9340,3663,35]",
     ("AL", "location", None, True, 22.536207, 113.938673, 82, 1, 0, True), "AL"),
    # Fall (bit 21) with a fix.
    ("[3G*8308373902*0080*AL,230817,095346,A,47.083950,N,15.4821850,E,7.60,273.8,0.0,4,15,44,0,0,00200010,2,255,232,"
     "1,7605,42530,118,7605,58036,119,0,65.8]",
     ("AL", "alarm", "fall", True, 47.08395, 15.482185, 44, 2, 0, True), "AL"),
    # An AL with no reason in its status word: an SOS here (Traccar: no alarm).
    ("[SG*9051004074*0058*AL,120117,145602,V,40.058413,N,76.336618,W,11.519,188,99,00,01,80,0,50,00000000,0,1,0,0,,10]",
     ("AL", "alarm", "sos", False, 40.058413, -76.336618, 80, 0, 0, False), "AL"),
    ("[3G*6105117105*008D*UD2,210716,231601,V,-33.480366,N,-70.7630692,E,0.00,0.0,0.0,0,100,34,0,0,00000000,3,255,"
     "730,2,29731,54315,167,29731,54316,162,29731,54317,145]",
     ("UD2", "location", None, False, -33.480366, -70.7630692, 34, 3, 0, True), None),
    ("[SG*9081000548*0009*LK,0,100]", ("LK", "heartbeat", None, False, None, None, None, 0, 0, False), "LK"),
    ("[3G*4700186508*000B*LK,0,10,100]", ("LK", "heartbeat", None, False, None, None, 100, 0, 0, True), "LK"),
    ("[SG*8800000015*0002*LK]", ("LK", "heartbeat", None, False, None, None, None, 0, 0, True), "LK"),
    ("[SG*8800000015*0087*UD,220414,134652,A,22.571707,N,113.8613968,E,0.1,0.0,100,7,60,90,1000,50,0000,4,1,460,0,"
     "9360,4082,131,9360,4092,148,9360,4091,143,9360,4153,141]",
     ("UD", "location", None, True, 22.571707, 113.8613968, 90, 4, 0, False), None),
    # Status 0001: low battery (bit 0).
    ("[SG*8800000015*0087*AL,220414,134652,A,22.571707,N,113.8613968,E,0.1,0.0,100,7,60,90,1000,50,0001,4,1,460,0,"
     "9360,4082,131,9360,4092,148,9360,4091,143,9360,4153,141]",
     ("AL", "alarm", "low_battery", True, 22.571707, 113.8613968, 90, 4, 0, False), "AL"),
    # Wi-Fi only, no cell, no fix.
    ("[3G*8800000015*00DD*UD,010120,025946,V,0.0,N,0.0,E,22.0,0,-1,0,100,98,0,0,00000000,0,5,eduroam,"
     "f4:db:e6:d2:a8:00,-53,eduroam,f4:db:e6:da:d0:80,-79,eduroam,78:0c:f0:24:f9:80,-82,Lions,b0:be:76:0a:05:9a,-82,"
     "tubs-guest,0,-53,0.0]",
     ("UD", "location", None, False, 0.0, 0.0, 98, 0, 5, False), None),
]

# (frame, expected (type, kind, alarm, GNSS fix, lat, lon, battery, cells, Wi-Fi APs), reply)
IW = [
    ("IWAP00353456789012345#", None, "IWBP00,"),  # the login: its reply starts so, then the time and zone
    ("IWAP01080524A2232.9806N11404.9355E000.1061830323.8706000908000102,460,0,9520,3671,"
     "Home|74-DE-2B-44-88-8C|97& Home1|74-DE-2B-44-88-8C|97&Home2|74-DE-2B-44-88-8C|97& Home3|74-DE-2B-44-88-8C|97#",
     ("AP01", "location", None, True, 22.54968, 114.08226, 80, 1, 4), "IWBP01#"),
    # Traccar: KEY_ALARM == ALARM_SOS for this one (alarm code 01).
    ("IWAP10080524A2232.9806N11404.9355E000.1061830323.8706000908000502,460,0,9520,3671,01,zhcn,00,"
     "HOME|74-DE-2B-44-88-8C|97&HOME1|74-DE-2B-44-88-8C|97&HOME2|74-DE-2B-44-88-8C|97&HOME3|74-DE-2B-44-88-8C|97#",
     ("AP10", "alarm", "sos", True, 22.54968, 114.08226, 80, 1, 4), "IWBP10#"),
    ("IWAP03,06000908000102,5555,30#", ("AP03", "heartbeat", None, False, None, None, 80, 0, 0), "IWBP03#"),
    ("IWAP02,zh_cn,0,7,460,0,9520|3671|13,9520|3672|12,9520|3673|11,9520|3674|10,9520|3675|9,9520|3676|8,"
     "9520|3677|7,4,1|D8-24-BD-79-FA-1F|59&2|3C-46-D8-6D-CE-01|81&3|0C-4C-39-1A-7C-65|69&4|70-A8-E3-5D-D7-C0|65#",
     ("AP02", "location", None, False, None, None, None, 7, 0), "IWBP02#"),
    # Traccar: position("2008-05-24 06:18:30.000", true, 22.54968, 114.08226).
    ("TRVAP01080524A2232.9806N11404.9355E000.1061830323.8706000908000102,460,0,9520,3671#",
     ("AP01", "location", None, True, 22.54968, 114.08226, 80, 1, 0), "TRVBP01#"),
    ("IWAP49,68#", ("AP49", "heartbeat", None, False, None, None, None, 0, 0), "IWBP49#"),
    # The watch's answer to our BP12 (SOS numbers), serial 080835.
    ("IWAP12,080835,+491773329827,+491773329826,+49306618438#", None, "IWBP12#"),
]
