# Every golden down message of the contract parses; broken ones are refused.
import json
import os
import mpytest
from mpytest import eq, raises
from app.commands import BadCommand, Deduper, parse_command, parse_config

FIX = os.getenv("PERS_FIXTURES")


def golden(prefix):
    out = []
    for name in sorted(os.listdir(FIX)):
        if name.startswith(prefix) and name.endswith(".json"):
            with open(FIX + "/" + name) as f:
                doc = json.load(f)
            out.append((name, doc))
    return out


def test_every_golden_command_parses():
    cmds = golden("cmd_")
    assert len(cmds) >= 9, cmds
    for name, doc in cmds:
        cmd = parse_command(json.dumps(doc["payload"]))
        eq(cmd["type"], doc["payload"]["type"])
        eq(cmd["cid"], doc["payload"]["cid"])
        assert doc["topic"].endswith("/cmd"), name
        print("ok", name)


def test_golden_config_parses():
    for _name, doc in golden("config"):
        cfg = parse_config(json.dumps(doc["payload"]))
        eq(cfg["version"], 3)
        eq(cfg["sos_hold_ms"], 1000)
        eq(cfg["whitelist"], ["+33611111111"])


def test_unknown_fields_are_ignored():
    cmd = parse_command('{"v":1,"cid":"c1","type":"ring","seconds":3,"new_field":{"x":1}}')
    eq(cmd["seconds"], 3)


def test_bad_commands_are_refused_with_their_cid():
    raises(BadCommand, parse_command, "not json")
    raises(BadCommand, parse_command, "[1,2]")
    raises(BadCommand, parse_command, '{"v":1,"type":"ring","seconds":3}')
    for bad in ('{"v":1,"cid":"c9","type":"selfdestruct"}',
                '{"v":1,"cid":"c9","type":"ring","seconds":"3"}',
                '{"v":1,"cid":"c9","type":"ring","seconds":true}',
                '{"v":1,"cid":"c9","type":"alert_ack","ref":"1.2","stage":"later"}',
                '{"v":2,"cid":"c9","type":"locate"}'):
        try:
            parse_command(bad)
            raise AssertionError("accepted " + bad)
        except BadCommand as e:
            eq(e.cid, "c9")


def test_bad_config_refused():
    raises(BadCommand, parse_config, '{"v":1}')
    raises(BadCommand, parse_config, '{"v":1,"version":2,"sos_hold_ms":"1s"}')


def test_deduper_remembers_outcome_bounded():
    d = Deduper(size=2)
    eq(d.get("a"), None)
    d.put("a", (True, None))
    eq(d.get("a"), (True, None))
    d.put("b", (False, "x"))
    d.put("c", (True, None))
    eq(d.get("a"), None)
    eq(d.get("b"), (False, "x"))


mpytest.run(globals())
