"""The embedded broker's TLS listener, checked by clients nobody here wrote: Python's
``ssl`` (OpenSSL) for the handshake and paho-mqtt for MQTT over it.

The certificate is what ``pers`` generates (cloud/tls.py); a client that trusts another
CA, or dials a name the certificate does not hold, is refused by the TLS handshake
itself; the per-device password still applies behind it."""
from __future__ import annotations

import socket
import ssl
import stat
import threading

import paho.mqtt.client as mqtt
import pytest

from cloud.broker import Credential, MosquittoBroker
from cloud.domain.security import mosquitto_hash
from cloud.tls import ensure_certificates
from tests.conftest import free_port


@pytest.fixture
def tls_broker(tmp_path):
    files = ensure_certificates(tmp_path, ["localhost", "127.0.0.1"])
    broker = MosquittoBroker(tmp_path, port=free_port(), tls=files, tls_host="127.0.0.1", tls_port=free_port())
    broker.write_files([Credential("dev-1", mosquitto_hash("s3cret"))])
    broker.start()
    yield broker
    broker.stop()


def handshake(port: int, cafile, server_hostname: str) -> ssl.SSLSocket:
    ctx = ssl.create_default_context(cafile=str(cafile))
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    return ctx.wrap_socket(raw, server_hostname=server_hostname)


def test_a_device_connects_over_tls_verifying_the_generated_ca(tls_broker, tmp_path):
    tls = tls_broker.tls
    assert stat.S_IMODE(tls.keyfile.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "broker" / "tls" / "ca.key").stat().st_mode) == 0o600
    assert tls.cafile == tmp_path / "broker" / "tls" / "ca.crt"
    with handshake(tls_broker.tls_port, tls.cafile, "127.0.0.1") as s:
        assert s.version() in ("TLSv1.2", "TLSv1.3")

    # MQTT over it, with the device's password (paho-mqtt: another implementation's client)
    done, result = threading.Event(), {}
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="dev-1")
    c.username_pw_set("dev-1", "s3cret")
    c.tls_set(ca_certs=str(tls.cafile))

    def on_connect(client, userdata, flags, reason, props):
        result["rc"] = reason.value
        done.set()
    c.on_connect = on_connect
    c.connect("localhost", tls_broker.tls_port)
    c.loop_start()
    try:
        assert done.wait(10)
        assert result["rc"] == 0
    finally:
        c.loop_stop()
        c.disconnect()


def test_another_ca_or_another_name_fails_the_handshake(tls_broker, tmp_path):
    other = ensure_certificates(tmp_path / "other", ["localhost", "127.0.0.1"])
    with pytest.raises(ssl.SSLCertVerificationError, match="unable to get local issuer|self.signed"):
        handshake(tls_broker.tls_port, other.cafile, "127.0.0.1")
    with pytest.raises(ssl.SSLCertVerificationError, match="match|mismatch"):
        handshake(tls_broker.tls_port, tls_broker.tls.cafile, "broker.example.org")


def test_the_ca_is_kept_and_the_server_certificate_follows_the_names(tmp_path):
    first = ensure_certificates(tmp_path, ["localhost"])
    ca, server = first.cafile.read_bytes(), first.certfile.read_bytes()
    again = ensure_certificates(tmp_path, ["localhost"])
    assert again.certfile.read_bytes() == server and again.cafile.read_bytes() == ca
    renamed = ensure_certificates(tmp_path, ["localhost", "pers.example.org"])
    assert renamed.cafile.read_bytes() == ca  # the watches keep trusting the broker
    assert renamed.certfile.read_bytes() != server


def test_the_operators_files_are_used_as_they_are_and_go_together(tmp_path):
    from cloud.platform import embedded_broker
    from cloud.settings import Settings
    from cloud.tls import tls_files
    own = ensure_certificates(tmp_path / "operator", ["mqtt.example.org"])
    s = Settings(data_dir=tmp_path / "data", mqtt_tls_certfile=own.certfile, mqtt_tls_keyfile=own.keyfile,
                 mqtt_tls_cafile=own.cafile)
    assert tls_files(s) == own
    broker = embedded_broker(s)
    broker.write_files([])
    conf = broker.conf.read_text()
    assert f"listener 8883 0.0.0.0\ncafile {own.cafile}\ncertfile {own.certfile}\nkeyfile {own.keyfile}" in conf
    assert not (tmp_path / "data" / "broker" / "tls").exists()  # nothing generated
    with pytest.raises(ValueError, match="go together"):
        tls_files(s.model_copy(update={"mqtt_tls_cafile": None}))
    assert tls_files(s.model_copy(update={"mqtt_tls_port": 0})) is None
