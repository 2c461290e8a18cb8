"""The broker's TLS certificates: a small CA of its own, or the operator's files.

The watches verify the broker against the CA they were flashed with (``/data/ca.pem``,
written to the modem's file system at boot: docs/firmware.md), so the CA must outlive
every server certificate: it is made once under ``<data>/broker/tls/`` and kept; the
server certificate is made again whenever the configured host names or addresses
change, or a year before it expires. Keys are 0600; ``ca.crt`` is public (``pers
flash --ca`` copies it to each watch).

EC P-256 keys: a certificate of a few hundred bytes, which the modem's file system and
its TLS stack take (A76XX manual, AT+CCERTDOWN), and a fast handshake for the watch.
An operator with a CA of their own supplies ``mqtt_tls_certfile``/``keyfile``/
``cafile`` instead (docs/operations.md); nothing is generated then.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
import logging
from dataclasses import dataclass
from pathlib import Path

from cloud.files import private_dir, restrict, write_private

log = logging.getLogger("pers.tls")

CA_DAYS = 20 * 365
SERVER_DAYS = 3 * 365
RENEW_BEFORE = dt.timedelta(days=365)


@dataclass(frozen=True)
class TlsFiles:
    """What a TLS listener needs: the CA the clients verify against, its certificate and key."""
    cafile: Path
    certfile: Path
    keyfile: Path


def _names(hosts: list[str]):
    from cryptography import x509
    out: list[x509.GeneralName] = []
    for h in hosts:
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            out.append(x509.DNSName(h))
    return out


def _key_pem(key) -> str:
    from cryptography.hazmat.primitives import serialization
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def _cert_pem(cert) -> str:
    from cryptography.hazmat.primitives import serialization
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _load_key(path: Path):
    from cryptography.hazmat.primitives import serialization
    return serialization.load_pem_private_key(path.read_bytes(), password=None)


def _make_ca(tls_dir: Path, now: dt.datetime) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "OpenPERS"),
                      x509.NameAttribute(NameOID.COMMON_NAME, f"OpenPERS broker CA {now:%Y-%m-%d}")])
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(ski, critical=False)
            .sign(key, hashes.SHA256()))
    write_private(tls_dir / "ca.key", _key_pem(key))
    (tls_dir / "ca.crt").write_text(_cert_pem(cert))
    log.info("made the broker's CA", extra={"path": str(tls_dir / "ca.crt")})


def _server_current(tls_dir: Path, hosts: list[str], now: dt.datetime) -> bool:
    from cryptography import x509
    crt, key = tls_dir / "server.crt", tls_dir / "server.key"
    if not (crt.exists() and key.exists()):
        return False
    cert = x509.load_pem_x509_certificate(crt.read_bytes())
    ca = x509.load_pem_x509_certificate((tls_dir / "ca.crt").read_bytes())
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    return (set(san) == set(_names(hosts)) and cert.issuer == ca.subject
            and cert.not_valid_after_utc - RENEW_BEFORE > now)


def _make_server(tls_dir: Path, hosts: list[str], now: dt.datetime) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    ca_key = _load_key(tls_dir / "ca.key")
    ca = x509.load_pem_x509_certificate((tls_dir / "ca.crt").read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
            .issuer_name(ca.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=SERVER_DAYS))
            .add_extension(x509.SubjectAlternativeName(_names(hosts)), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.public_key()), critical=False)  # type: ignore[arg-type]
            .sign(ca_key, hashes.SHA256()))  # type: ignore[arg-type]
    write_private(tls_dir / "server.key", _key_pem(key))
    (tls_dir / "server.crt").write_text(_cert_pem(cert))
    log.info("made the broker's server certificate", extra={"names": ",".join(hosts)})


def ensure_certificates(data_dir: Path, hosts: list[str], now: dt.datetime | None = None) -> TlsFiles:
    """``<data>/broker/tls/{ca.crt,ca.key,server.crt,server.key}``: the CA made once and
    kept, the server certificate for ``hosts`` (names and addresses) made or remade as needed."""
    if not hosts:
        raise ValueError("the broker's certificate needs at least one host name or address")
    now = now or dt.datetime.now(dt.UTC)
    tls_dir = private_dir(Path(data_dir) / "broker" / "tls")
    if not ((tls_dir / "ca.crt").exists() and (tls_dir / "ca.key").exists()):
        _make_ca(tls_dir, now)
    if not _server_current(tls_dir, hosts, now):
        _make_server(tls_dir, hosts, now)
    for key in ("ca.key", "server.key"):
        restrict(tls_dir / key)
    return TlsFiles(tls_dir / "ca.crt", tls_dir / "server.crt", tls_dir / "server.key")


def tls_files(settings) -> TlsFiles | None:
    """The broker's TLS files from the settings: the operator's, or generated; None when
    the TLS listener is off (``mqtt_tls_port`` 0)."""
    if not settings.mqtt_tls_port:
        return None
    supplied = (settings.mqtt_tls_certfile, settings.mqtt_tls_keyfile, settings.mqtt_tls_cafile)
    if any(supplied):
        if not all(supplied):
            raise ValueError("PERS_MQTT_TLS_CERTFILE, PERS_MQTT_TLS_KEYFILE and PERS_MQTT_TLS_CAFILE go together")
        files = TlsFiles(Path(settings.mqtt_tls_cafile), Path(settings.mqtt_tls_certfile),
                         Path(settings.mqtt_tls_keyfile))
        for f in (files.cafile, files.certfile, files.keyfile):
            if not f.is_file():
                raise FileNotFoundError(f"TLS file not found: {f}")
        return files
    return ensure_certificates(settings.data_dir, settings.tls_hosts())
