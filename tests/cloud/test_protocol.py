import json

import pytest
from pydantic import ValidationError

from cloud import protocol
from tests.conftest import golden_examples, invalid_examples, salvaged_examples

GOLDEN = golden_examples()
INVALID = invalid_examples()
SALVAGED = salvaged_examples()


@pytest.mark.parametrize("name", [n for n, e in GOLDEN.items() if e["kind"] in protocol.UP_KINDS])
def test_golden_up_messages_validate(name):
    ex = GOLDEN[name]
    device_id, kind, msg = protocol.parse_up(ex["topic"], json.dumps(ex["payload"]).encode())
    assert (device_id, kind) == ("dev-0001", ex["kind"])
    # Round trip: what we parse is what was sent, minus nulls; nothing was salvaged.
    assert json.loads(protocol.dumps(msg)) == {k: v for k, v in ex["payload"].items() if v is not None}
    assert getattr(msg, "flags", []) == []


@pytest.mark.parametrize("name", [n for n, e in GOLDEN.items() if e["kind"] == "cmd"])
def test_golden_commands_validate(name):
    cmd = protocol.COMMAND_ADAPTER.validate_python(GOLDEN[name]["payload"])
    assert cmd.type == GOLDEN[name]["payload"]["type"]


def test_golden_config_validates():
    cfg = protocol.DeviceConfig.model_validate(GOLDEN["config"]["payload"])
    assert cfg.sos_hold_ms == 1000 and cfg.reminders[0].at == "08:00"


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_examples_are_rejected_with_their_reason(name):
    ex = INVALID[name]
    with pytest.raises(protocol.Rejected) as info:
        protocol.parse_up(ex["topic"], ex["payload_text"].encode())
    assert info.value.reason == ex["reason"]


@pytest.mark.parametrize("name", sorted(SALVAGED))
def test_alarms_with_bad_fields_are_kept_with_the_bad_fields_dropped_and_flagged(name):
    ex = SALVAGED[name]
    _, kind, msg = protocol.parse_up(ex["topic"], ex["payload_text"].encode())
    got = json.loads(protocol.dumps(msg))
    if ex.get("synthetic_mid"):
        assert got.pop("mid") == protocol.synthetic_mid(ex["payload_text"].encode())
    assert got == ex["expect"]
    assert sorted(f["field"] for f in msg.flags) == sorted(ex["flags"])
    # A re-send of the same bytes is salvaged the same way: it is still merged.
    _, _, again = protocol.parse_up(ex["topic"], ex["payload_text"].encode())
    assert again == msg and again.flags == msg.flags


def test_every_number_in_the_contract_has_both_bounds():
    """The contract bounds every integer and float it reads (docs/protocol.md, "Ranges"):
    a field without an upper bound is how 2^31 reached PostgreSQL's int4 columns."""
    import annotated_types
    missing = []
    for name, model in {**protocol.UP_MODELS, "loc.": protocol.Location, "cell.": protocol.Cell,
                        "batt.": protocol.Battery, "vitals.": protocol.Vitals, "net.": protocol.Net}.items():
        for field, info in model.model_fields.items():
            ann = str(info.annotation)
            if "int" not in ann and "float" not in ann:
                continue
            kinds = {type(m) for m in info.metadata}
            if field == "v":
                continue  # Literal[1]
            bounded_below = {annotated_types.Ge, annotated_types.Gt} & kinds
            if not (bounded_below and {annotated_types.Le, annotated_types.Lt} & kinds):
                missing.append(f"{name}.{field}")
    assert not missing, missing


@pytest.mark.parametrize("topic,reason", [
    ("pers/v1/dev-1/alert/extra", "bad_topic"),
    ("pers/v2/dev-1/alert", "bad_topic"),
    ("pers/v1/dev 1/alert", "bad_device_id"),
    ("pers/v1/dev-1/cmd", "bad_topic"),
])
def test_bad_topics_are_rejected(topic, reason):
    with pytest.raises(protocol.Rejected) as info:
        protocol.parse_up(topic, b"{}")
    assert info.value.reason == reason


def test_unknown_fields_are_ignored():
    _, _, msg = protocol.parse_up("pers/v1/d/alert", b'{"v":1,"mid":"1.1","kind":"sos","future":{"x":1}}')
    assert msg.kind == "sos"


def test_oversized_and_non_utf8_payloads_are_rejected():
    with pytest.raises(protocol.Rejected) as big:
        protocol.parse_up("pers/v1/d/alert", b"{" + b" " * 5000 + b"}")
    assert big.value.reason == "too_large"
    with pytest.raises(protocol.Rejected) as bad:
        protocol.parse_up("pers/v1/d/alert", b"\xff\xfe{}")
    assert bad.value.reason == "not_utf8"


@pytest.mark.parametrize("field,top", [("lac", 16_777_215), ("cid", 68_719_476_735)])
def test_cell_identity_bounds_are_the_published_ones(field, top):
    """Android's CellIdentityNr (MAX_TAC 0xffffff after 3GPP TS 24.501 9.11.3.8;
    MAX_NCI 68719476735, the 36-bit NR cell identity) and Windows' WWAN NR serving
    cell info give these maxima; a real 5G cell's ids must pass, one more must not."""
    cell = {"mcc": 208, "mnc": 1, "lac": 1, "cid": 1}
    assert protocol.Cell.model_validate({**cell, field: top})
    with pytest.raises(ValidationError):
        protocol.Cell.model_validate({**cell, field: top + 1})


def test_medication_reminders_add_to_the_config_and_the_first_form_is_unchanged():
    first = {"at": "08:00", "text": "Take your pills"}
    assert protocol.Reminder.model_validate(first).model_dump(exclude_none=True) == first
    pills = {**first, "id": "am", "days": [0, 2, 4], "confirm": True, "window_min": 30}
    assert protocol.Reminder.model_validate(pills).model_dump(exclude_none=True) == pills
    for bad in ({**pills, "days": [7]}, {**pills, "window_min": 0}, {**pills, "id": "a b"},
                {**pills, "text": "pills\x00"}):
        with pytest.raises(ValueError):
            protocol.Reminder.model_validate(bad)
