"""Hypothesis over the wire contract: any bytes on any up topic either parse or
are rejected with a reason; nothing else escapes. (A short run here; the long
run belongs to `make fuzz`.)"""
import json
import os

from hypothesis import given, settings
from hypothesis import strategies as st

from cloud import protocol

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=30)
EXAMPLES = int(os.environ.get("PERS_FUZZ_EXAMPLES", "1500"))
kinds = st.sampled_from(protocol.UP_KINDS + ("cmd", "config", "", "x" * 70))
device_ids = st.sampled_from(["dev-1", "", "a/b", "+", "#", "x" * 65, "ok_id"]) | st.text(max_size=8)


@settings(max_examples=EXAMPLES, deadline=None)
@given(device_ids, kinds, st.binary(max_size=600) | json_values.map(lambda v: json.dumps(v).encode()))
def test_parse_up_only_accepts_or_rejects(device_id, kind, payload):
    try:
        dev, k, msg = protocol.parse_up(f"pers/v1/{device_id}/{kind}", payload)
    except protocol.Rejected as rej:
        assert rej.reason in {"bad_topic", "bad_device_id", "too_large", "not_utf8", "not_json", "not_object",
                              "invalid"}
    else:
        assert k in protocol.UP_KINDS and protocol.DEVICE_ID_RE.match(dev)


@settings(max_examples=max(EXAMPLES // 3, 100), deadline=None)
@given(st.fixed_dictionaries({"v": st.just(1), "mid": st.text(max_size=70), "kind": st.text(max_size=12)},
                             optional={"ts": json_values, "loc": json_values, "ref": json_values}))
def test_alert_shaped_garbage(body):
    try:
        protocol.parse_up("pers/v1/dev-1/alert", json.dumps(body).encode())
    except protocol.Rejected as rej:
        assert rej.reason in ("invalid", "too_large")
