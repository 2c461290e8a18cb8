"""Configuration, from environment variables prefixed ``PERS_`` (or a ``.env`` file).

The defaults need nothing set up by hand: SQLite under the data directory and an
embedded Mosquitto that ``pers`` starts. At scale, set ``PERS_DATABASE_URL`` to
PostgreSQL and ``PERS_BROKER=external`` with ``PERS_MQTT_HOST``/``PORT``.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PERS_", env_file=".env", extra="ignore")

    data_dir: Path = Path("var")
    database_url: str | None = None

    broker: Literal["embedded", "external"] = "embedded"
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 1883
    mqtt_username: str = "pers-cloud"
    mqtt_password: str | None = None  # embedded: generated into the data dir
    mqtt_client_id: str | None = None  # defaults to the username (Mosquitto enforces it)
    mqtt_shared_group: str | None = None  # e.g. "pers" for $share/pers/... with several workers

    http_host: str = "127.0.0.1"
    http_port: int = 8000
    secure_cookies: bool = False  # set True behind TLS
    session_hours: int = 12
    login_max_failures: int = 5
    login_window_s: int = 300

    late_alert_s: int = 300  # an alert whose ts is older than this on receipt is flagged late
    log_json: bool = True

    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'pers.db').resolve()}"


@lru_cache
def get_settings() -> Settings:
    return Settings()
