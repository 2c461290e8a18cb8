"""Hypothesis through the whole ingest on a real database: any payload on any up
topic, for our device, a foreign one or an unknown one, is either stored or
rejected with a reason and a metric. Nothing escapes, and a rejection writes
nothing. `make fuzz` runs this with PERS_FUZZ_EXAMPLES=100000."""
import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from cloud import protocol
from cloud.store.models import Alert, AlertCase, CaseEvent, Command, Device, LocationPoint
from tests.cloud_helpers import seeded
from tests.conftest import DATABASES, new_database_url

EXAMPLES = int(os.environ.get("PERS_FUZZ_EXAMPLES", "400"))
TABLES = (Alert, AlertCase, CaseEvent, Command, LocationPoint)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-2**70, max_value=2**70) | st.floats() | st.text(max_size=30),
    lambda ch: st.lists(ch, max_size=4) | st.dictionaries(st.text(max_size=8), ch, max_size=4), max_leaves=20)


def plausible(kind):
    """Messages close to valid, so the fuzzer reaches the store and not only the parser."""
    base = {"v": st.sampled_from([1, 1, 1, 2, "1"]), "mid": st.text(min_size=1, max_size=8) | st.just("1.1"),
            "ts": st.none() | st.integers(min_value=-5, max_value=2**41)}
    extra = {
        "alert": {"kind": st.sampled_from(["sos", "fall", "low_battery", "cancel", "x"]),
                  "trigger": st.sampled_from(["button", "user", None]), "ref": st.none() | st.just("1.1"),
                  "loc": st.none() | st.fixed_dictionaries({"lat": st.floats(-100, 100), "lon": st.floats(-200, 200),
                                                            "src": st.sampled_from(["gnss", "cell", "last", "?"])})},
        "loc": {"loc": st.fixed_dictionaries({"lat": st.floats(-90, 90), "lon": st.floats(-180, 180),
                                              "src": st.just("gnss")}), "reason": st.just("periodic")},
        "status": {"batt": st.fixed_dictionaries({"pct": st.integers(-5, 120)}), "fw": st.text(max_size=40),
                   "cfg": st.integers(-1, 10)},
        "ack": {"cid": st.text(min_size=1, max_size=10), "ok": st.booleans()},
        "presence": {"online": st.booleans() | st.just("yes")},
    }[kind]
    return st.fixed_dictionaries({**base, **extra}).map(lambda d: json.dumps(d).encode())


@pytest.fixture(scope="module", params=DATABASES)
def world(request, tmp_path_factory):
    """One database per run of the fuzzer, on each database (ids [sqlite], [postgresql])."""
    return seeded(tmp_path_factory.mktemp("fuzz"), database_url=new_database_url(request, request.param))


def counts(svc):
    with svc.sm() as s:
        return tuple(s.scalar(select(func.count()).select_from(t)) for t in TABLES)


@st.composite
def messages(draw):
    kind = draw(st.sampled_from(protocol.UP_KINDS))
    device = draw(st.sampled_from(["@own", "@own", "@own", "stranger-1", "../x", ""]))
    payload = draw(plausible(kind) | json_values.map(lambda v: json.dumps(v).encode()) | st.binary(max_size=300))
    return device, kind, payload


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(messages())
def test_every_message_is_stored_or_rejected_cleanly(world, message):
    svc, sender, seed = world
    device, kind, payload = message
    device = seed.device_id if device == "@own" else device
    before = counts(svc)
    out = svc.ingestor.handle(f"pers/v1/{device}/{kind}", payload)
    after = counts(svc)
    if not out.accepted:
        assert out.reason
        assert after == before, "a rejected message wrote something"
    else:
        assert device == seed.device_id
    with svc.sm() as s:
        assert s.get(Device, seed.device_id) is not None
        # Every stored alert other than a cancel belongs to a case.
        assert s.scalar(select(func.count()).select_from(Alert)
                        .where(Alert.case_id.is_(None), Alert.kind != "cancel")) == 0
