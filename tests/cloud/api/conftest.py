"""Fixtures of the API tests: ``served``, the real HTTP server on loopback with a FakeClock."""
from tests.cloud.api.served import served  # noqa: F401
