"""Fixtures for the firmware scenario tests: a real Mosquitto, paho playing the cloud."""
from __future__ import annotations

import pytest

from hwsim.runner import Watch
from hwsim.scenario import Scenario

from .cloudsim import FakeCloud

DEV, SECRET = "watch-7", "s3cret-7"


@pytest.fixture
def broker(mosquitto):
    return mosquitto({DEV: SECRET})


@pytest.fixture
def cloud(broker):
    c = FakeCloud(broker.port)
    yield c
    c.close()


@pytest.fixture
def make_watch(broker):
    """``make_watch(scenario, speed=20, **Watch kwargs)``: an unstarted simulated watch."""
    def make(scenario: Scenario | None = None, speed: float = 20, **kw) -> Watch:
        return Watch(DEV, SECRET, ("127.0.0.1", broker.port), scenario=scenario or Scenario(name="test"),
                     speed=speed, **kw)
    return make
