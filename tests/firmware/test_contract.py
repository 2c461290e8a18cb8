"""The messages the firmware builds validate with the cloud's definition of the contract."""
import json

from cloud.protocol import parse_up

from .helpers import MPY_TESTS, run_micropython


def test_firmware_messages_validate_with_cloud_protocol(tmp_path):
    out = run_micropython(MPY_TESTS / "emit_messages.py", TMPDIR=str(tmp_path))
    assert out.returncode == 0, out.stdout + out.stderr
    seen = {}
    for line in out.stdout.splitlines():
        doc = json.loads(line)
        payload = json.dumps(doc["payload"]).encode()
        _, kind, model = parse_up(f"pers/v1/dev-0001/{doc['kind']}", payload)
        # Valid as sent: not an alarm the cloud had to salvage by dropping fields.
        assert getattr(model, "flags", []) == [], (doc, model.flags)
        seen.setdefault(kind, []).append(model)
    assert set(seen) == {"alert", "loc", "status", "ack", "presence"}
    sos, fall = seen["alert"]
    assert sos.kind == "sos" and sos.loc.src == "gnss" and sos.cell.mcc == 208 and sos.ts
    assert fall.kind == "fall" and fall.ts is None and fall.cell is None
    assert {a.cid: a.ok for a in seen["ack"]} == {"c-1": True, "c-2": True, "c-3": False}
    assert seen["loc"][0].reason == "request" and seen["loc"][0].ref == sos.mid
    mids = [m.mid for models in seen.values() for m in models if hasattr(m, "mid")]
    assert len(mids) == len(set(mids)), "mid must be unique"
    assert all(m.startswith("k3x9q2ab7c1d.3.") for m in mids)  # "<install>.<boot>.<seq>"
