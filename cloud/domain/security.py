"""Hashing of operator passwords and device secrets (argon2), and session tokens."""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()


def hash_secret(plain: str) -> str:
    return _hasher.hash(plain)


def verify_secret(encoded: str, plain: str) -> bool:
    try:
        return _hasher.verify(encoded, plain)
    except (VerificationError, InvalidHashError):
        return False


def new_device_secret() -> str:
    return secrets.token_urlsafe(18)


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """Session tokens are stored as digests: a database leak does not leak sessions."""
    return hashlib.sha256(token.encode()).hexdigest()


# Device secrets are 128-bit random tokens, so the iteration count does not
# guard against guessing; it is kept at mosquitto_passwd's default so that a
# reconnect storm of 50k watches does not stall the broker on hashing.
PBKDF2_ITERATIONS = 101


def mosquitto_hash(password: str, *, salt: bytes | None = None, iterations: int = PBKDF2_ITERATIONS) -> str:
    """Hash in Mosquitto 2's ``$7$`` (PBKDF2-HMAC-SHA512) password-file format."""
    salt = salt if salt is not None else secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def mosquitto_verify(password: str, encoded: str) -> bool:
    try:
        _, kind, iterations, salt_b64, digest_b64 = encoded.split("$")
    except ValueError:
        return False
    if kind != "7":
        return False
    again = mosquitto_hash(password, salt=base64.b64decode(salt_b64), iterations=int(iterations))
    return hmac.compare_digest(again.split("$")[-1], digest_b64)
