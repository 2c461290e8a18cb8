"""The platform's files and database, without the web app: the data directory, the
migrated schema, the broker's service password and its password file. The CLI's
platform commands (``pers device add``, ``pers tenant add``) need only these, and
importing the runtime would load the whole web app first (seconds, on every call)."""
from __future__ import annotations

import os
import secrets

from cloud.broker import Credential, MosquittoBroker
from cloud.domain.accounts import broker_credentials
from cloud.domain.security import mosquitto_hash
from cloud.files import open_private, private_dir, restrict
from cloud.settings import Settings
from cloud.store.db import make_engine, make_sessionmaker
from cloud.store.migrate import upgrade
from cloud.tls import tls_files


def prepare(settings: Settings) -> None:
    """Create the data directory and bring the schema to the latest migration."""
    private_dir(settings.data_dir)
    upgrade(settings.db_url)


def service_password(settings: Settings) -> str:
    """The cloud's broker password: from settings, or generated once into the data dir."""
    if settings.mqtt_password:
        return settings.mqtt_password
    path = settings.data_dir / "broker" / "service.secret"
    if not path.exists():
        private_dir(path.parent)
        with os.fdopen(open_private(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL), "w") as fh:
            fh.write(secrets.token_urlsafe(24))
    restrict(path)  # one left by an older version, or copied in
    return path.read_text().strip()


def embedded_broker(settings: Settings) -> MosquittoBroker:
    return MosquittoBroker(settings.data_dir, host=settings.mqtt_host, port=settings.mqtt_port,
                           service_accounts=settings.mqtt_service_accounts(), tls=tls_files(settings),
                           tls_host=settings.mqtt_tls_host, tls_port=settings.mqtt_tls_port)


def sync_broker_auth(settings: Settings, broker: MosquittoBroker | None = None, sm=None) -> None:
    """Rewrite the broker's password file and ACL from the database, then reload it.

    The reload (SIGHUP) also disconnects a connected device whose password no
    longer matches (a rotated secret). With an external broker the files are
    written under the data directory for deployment and nothing is signalled."""
    broker = broker or embedded_broker(settings)
    if sm is None:
        engine = make_engine(settings.db_url)
        sm = make_sessionmaker(engine)
    secret = mosquitto_hash(service_password(settings))
    creds = [Credential(user, secret) for user in settings.mqtt_service_accounts()]
    creds += [Credential(dev, h) for dev, h in broker_credentials(sm)]
    broker.write_files(creds)
    broker.reload()


class BrokerFiles:
    """The domain's BrokerAuth port, as the runtime implements it: provisioning and
    rotation through the API rewrite the broker's files and reload it. ``broker``
    None (external broker): the files are written under the data directory only."""

    def __init__(self, settings: Settings, broker: MosquittoBroker | None, sm):
        self.settings, self.broker, self.sm = settings, broker, sm

    def sync(self) -> None:
        sync_broker_auth(self.settings, self.broker, sm=self.sm)
