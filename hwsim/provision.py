"""Provisioning a fleet of twins through the cloud's own door.

The simulator must not know how the cloud stores a device, so it never writes
the cloud's database: it runs ``pers device add --count N --json``, exactly what
an installer runs, and reads the secrets from its output. One process, one
transaction and one rewrite of the broker's password file for the whole fleet.
"""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Settings attributes the CLI needs to reach the same database and broker files as
# the caller (a ``cloud.settings.Settings`` or anything with these attributes).
_SETTINGS_ENV = {"data_dir": "PERS_DATA_DIR", "database_url": "PERS_DATABASE_URL", "broker": "PERS_BROKER",
                 "mqtt_host": "PERS_MQTT_HOST", "mqtt_port": "PERS_MQTT_PORT",
                 "mqtt_username": "PERS_MQTT_USERNAME", "mqtt_password": "PERS_MQTT_PASSWORD",
                 # the broker's config is rewritten with the TLS listener: the caller's, not the default
                 "mqtt_tls_port": "PERS_MQTT_TLS_PORT", "mqtt_tls_host": "PERS_MQTT_TLS_HOST",
                 "mqtt_tls_names": "PERS_MQTT_TLS_NAMES", "mqtt_tls_certfile": "PERS_MQTT_TLS_CERTFILE",
                 "mqtt_tls_keyfile": "PERS_MQTT_TLS_KEYFILE", "mqtt_tls_cafile": "PERS_MQTT_TLS_CAFILE"}


def cli_env(settings=None) -> dict[str, str]:
    """This process's environment, with ``settings`` (when given) as PERS_* variables
    for the CLI: the CLI then opens the caller's database, not the default one."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    for attr, var in _SETTINGS_ENV.items():
        value = getattr(settings, attr, None) if settings is not None else None
        if value is None:
            continue
        # The CLI may run in another directory's sense of "relative": make the data dir absolute.
        env[var] = str(Path(value).resolve()) if attr == "data_dir" else str(value)
    return env


def provision_fleet(settings, n: int, *, tenant_name: str = "Les Tilleuls care home", prefix: str = "fleet",
                    credentials: Path | None = None, sync_broker: bool = True,
                    start: int = 0, protocol: str = "openpers") -> list[tuple[str, str]]:
    """Create ``n`` devices for ``tenant_name`` with ``pers device add --count`` and return
    ``[(device_id, secret)]``; ids ``<prefix>-<7 digits>`` from ``start``.

    ``settings`` says which cloud (its data dir, database and broker); None: the
    PERS_* environment. The CLI rewrites the broker's password file once, after its
    commit, when the broker is embedded; ``sync_broker=False`` leaves it to the caller
    (a harness that provisions in several calls). The secrets are written to
    ``credentials`` (CSV, mode 0600) when given; the cloud keeps only their hashes.
    ``protocol`` "setracker"/"iw": watches of the gateway, ids ``<prefix><7 digits>`` (an
    IMEI-like number: ``prefix`` is digits), without a secret."""
    creds: list[tuple[str, str]] = []
    if n > 0:
        cmd = [sys.executable, "-m", "cloud.cli", "device", "add", "--tenant", tenant_name, "--count", str(n),
               "--id-prefix", prefix, "--first", str(start), "--json", "--protocol", protocol]
        if not sync_broker:
            cmd.append("--no-broker-sync")
        proc = subprocess.run(cmd, env=cli_env(settings), capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise ValueError(f"pers device add failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
        creds = [(d["id"], d["secret"]) for d in map(json.loads, proc.stdout.splitlines())]
        if len(creds) != n:
            raise ValueError(f"pers device add printed {len(creds)} devices, not {n}")
    if credentials is not None:
        write_credentials(credentials, creds)
    return creds


def write_credentials(path: Path, creds: list[tuple[str, str]]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", newline="") as fh:
        csv.writer(fh).writerows(creds)


def read_credentials(path: Path) -> list[tuple[str, str]]:
    with open(path, newline="") as fh:
        return [(row[0], row[1]) for row in csv.reader(fh) if row and not row[0].startswith("#")]
