"""Fixtures for the firmware scenario tests: a real Mosquitto, paho playing the cloud.

The watch connects as a provisioned watch does: over TLS, by its modem's SSL stack,
verifying the broker against the CA in its flash (the cloud's paho stays on the
loopback plaintext listener, as the cloud's own does)."""
from __future__ import annotations

import pytest

from hwsim.runner import Watch
from hwsim.scenario import Scenario

from .cloudsim import FakeCloud

DEV, SECRET = "watch-7", "s3cret-7"


@pytest.fixture
def broker(mosquitto):
    return mosquitto({DEV: SECRET}, tls=True)


@pytest.fixture
def cloud(broker):
    c = FakeCloud(broker.port)
    yield c
    c.close()


@pytest.fixture
def make_watch(broker):
    """``make_watch(scenario, speed=20, tls=True, **Watch kwargs)``: an unstarted simulated
    watch; ``tls=False``: provisioned for the plaintext listener (what a test of the
    plain TCP socket path, or a measure of what TLS costs, needs)."""
    def make(scenario: Scenario | None = None, speed: float = 20, tls: bool = True, **kw) -> Watch:
        if tls:
            kw.setdefault("ca", broker.tls.cafile)
        port = broker.tls_port if tls else broker.port
        return Watch(DEV, SECRET, ("127.0.0.1", port), scenario=scenario or Scenario(name="test"),
                     speed=speed, **kw)
    return make
