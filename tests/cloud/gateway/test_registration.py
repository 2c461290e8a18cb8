"""A gateway watch is registered by the IMEI it sends, with its protocol, and no secret."""
import shutil

import pytest

from cloud.domain.accounts import provision_device
from cloud.domain.clock import FakeClock
from cloud.domain.errors import Invalid
from cloud.domain.views import device_view
from cloud.seed import seed_demo
from cloud.store.db import make_engine, make_sessionmaker
from cloud.store.models import Device


def test_registered_by_imei_with_its_protocol_and_no_secret(sqlite_template, tmp_path):
    shutil.copy(sqlite_template, tmp_path / "pers.db")
    engine = make_engine(f"sqlite:///{tmp_path / 'pers.db'}")
    sm, clock = make_sessionmaker(engine), FakeClock()
    seed = seed_demo(sm, clock, tmp_path)
    for bad_id, proto in ((None, "iw"), ("watch-1", "setracker"), ("12345", "iw"), ("353456789012345", "gt06")):
        with pytest.raises(Invalid):
            provision_device(sm, clock, seed.tenant_id, device_id=bad_id, device_protocol=proto)
    made = provision_device(sm, clock, seed.tenant_id, device_id="353456789012345", device_protocol="iw")
    assert made.secret == ""  # the protocol has no password: nothing to hand out
    with sm() as s:
        view = device_view(s.get(Device, "353456789012345"))
        ours = device_view(s.get(Device, seed.device_id))
    assert view["protocol"] == "iw" and ours["protocol"] == "openpers"  # the admin page's column
    engine.dispose()
