"""What the domain needs from the edges, as plain protocols."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """UTC, naive (the database stores naive UTC)."""

    def unix(self) -> int:
        """Seconds since the epoch."""


class CommandSender(Protocol):
    def send_command(self, device_id: str, command: dict[str, Any]) -> None:
        """Publish a command (QoS 1) on the device's cmd topic."""


class EventSink(Protocol):
    def publish(self, tenant_id: int, event: dict[str, Any]) -> None:
        """Deliver a live event to the consoles of that tenant."""


class NullSender:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def send_command(self, device_id: str, command: dict[str, Any]) -> None:
        self.sent.append((device_id, command))


class NullEvents:
    def __init__(self) -> None:
        self.events: list[tuple[int, dict[str, Any]]] = []

    def publish(self, tenant_id: int, event: dict[str, Any]) -> None:
        self.events.append((tenant_id, event))
