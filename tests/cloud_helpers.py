"""Builders for cloud tests: a migrated SQLite database in a temp dir, demo seed."""
from __future__ import annotations

from pathlib import Path

from cloud.api.app import Services, build_services
from cloud.domain.clock import FakeClock
from cloud.domain.ports import NullSender
from cloud.seed import seed_demo
from cloud.settings import Settings
from cloud.store.migrate import upgrade


def make_services(tmp_path: Path, clock: FakeClock | None = None) -> tuple[Services, NullSender]:
    settings = Settings(data_dir=tmp_path, log_json=False)
    upgrade(settings.db_url)
    clock = clock or FakeClock()
    svc = build_services(settings, clock=clock, with_mqtt=False)
    sender = NullSender()
    # with_mqtt=False leaves the late-bound sender empty: record commands instead.
    svc.ingestor.sender.target = sender
    return svc, sender


def seeded(tmp_path: Path, clock: FakeClock | None = None):
    svc, sender = make_services(tmp_path, clock)
    seed = seed_demo(svc.sm, svc.clock, tmp_path)
    return svc, sender, seed
