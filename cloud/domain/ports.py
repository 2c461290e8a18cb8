"""What the domain needs from the edges, as plain protocols."""
from __future__ import annotations

from typing import Protocol


class CommandSender(Protocol):
    def send_command(self, device_id: str, command: dict) -> None:
        """Publish a command (QoS 1) on the device's cmd topic."""


class EventSink(Protocol):
    def publish(self, tenant_id: int, event: dict) -> None:
        """Deliver a live event to the consoles of that tenant."""


class NullSender:
    def __init__(self):
        self.sent: list[tuple[str, dict]] = []

    def send_command(self, device_id: str, command: dict) -> None:
        self.sent.append((device_id, command))


class NullEvents:
    def __init__(self):
        self.events: list[tuple[int, dict]] = []

    def publish(self, tenant_id: int, event: dict) -> None:
        self.events.append((tenant_id, event))
