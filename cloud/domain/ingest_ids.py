"""Command ids: shared by every module that sends commands (re-exported by ingest)."""
import secrets


def new_cid() -> str:
    return "c-" + secrets.token_hex(6)
