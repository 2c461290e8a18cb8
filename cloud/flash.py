"""Flashing a watch: compile the firmware, copy it to the board, provision it.

``flash(port, device_id, secret, broker_host, broker_port, profiles=None)``
compiles ``firmware/`` with mpy-cross (the board runs .mpy: no compile on the
device), stages the board's files, writes the device config
(``/data/device.json``: id, secret, broker, virtual-SIM profiles) and sends
everything with mpremote. ``main(argv)`` is the ``pers flash`` command;
``--dry-run DIR`` stops after staging (and builds the ROMFS image) so the result
can be checked without a board.

The ``app`` and ``hal`` packages go to the board's ROMFS partition (``mpremote
romfs deploy``; MicroPython mounts it at /rom, on sys.path) so their bytecode
runs in place from flash. Copied to the filesystem instead (``--files``, for a
board with PSRAM), the bytecode is loaded into the heap: about 96 KB, which
leaves an ESP32 without PSRAM nothing for the app (docs/firmware.md).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from cloud.files import write_private

FIRMWARE_DIR = Path(__file__).resolve().parents[1] / "firmware"
SCRIPTS = ("main.py", "boot.py")          # run from source by the board's boot sequence
NOT_ON_BOARD = ("hal/sim.py", "manifest.py")  # the simulator's HAL; the image build's manifest
DATA_DIR = "data"                         # FLASH_DIR of firmware/hal/esp32.py, without the slash
ROM_DIR = "rom"                           # staged packages for the ROMFS partition
ROM_IMAGE = "firmware.romfs"              # the image built from ROM_DIR (dry run: to check it)
ROM_PACKAGES = ("app", "hal")
DEVICE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
PROFILE_FIELDS = {"name": str, "mccmnc": list, "apn": str}


class FlashError(ValueError):
    pass


def _tool(name: str) -> str:
    here = Path(sys.executable).parent / name
    found = str(here) if here.exists() else shutil.which(name)
    if not found:
        raise FlashError(f"{name} not found (pip install {name})")
    return found


def check_profiles(profiles) -> list[dict]:
    if profiles is None:
        return []
    if not isinstance(profiles, list):
        raise FlashError("profiles must be a list")
    for i, p in enumerate(profiles):
        if not isinstance(p, dict):
            raise FlashError(f"profile #{i + 1} is not an object")
        for field, kind in PROFILE_FIELDS.items():
            if not isinstance(p.get(field), kind):
                raise FlashError(f"profile #{i + 1}: {field} must be a {kind.__name__}")
        if not all(isinstance(m, str) and m.isdigit() and len(m) in (5, 6) for m in p["mccmnc"]):
            raise FlashError(f"profile #{i + 1}: mccmnc entries are 5 or 6 digits")
    return profiles


def device_config(device_id: str, secret: str, broker_host: str, broker_port: int, profiles=None,
                  tls: bool = False) -> dict:
    """/data/device.json. ``tls``: the watch connects over TLS (its modem's), verifying the
    broker against /data/ca.pem, which is written beside it (``broker_port``: the TLS
    listener, 8883 by default; docs/firmware.md)."""
    if not DEVICE_ID.match(device_id or ""):
        raise FlashError(f"device id must match {DEVICE_ID.pattern}")
    if not secret:
        raise FlashError("the device secret is required")
    if not broker_host or not 0 < int(broker_port) < 65536:
        raise FlashError("broker must be HOST and a port from 1 to 65535")
    device = {"id": device_id, "secret": secret, "broker_host": broker_host, "broker_port": int(broker_port),
              "profiles": check_profiles(profiles)}
    if tls:
        device["tls"] = True
    return device


def stage(out: Path, device: dict, firmware_dir: Path = FIRMWARE_DIR, *, romfs: bool = True) -> Path:
    """The board's files in ``out``: the compiled packages (under ``rom/`` for the
    ROMFS partition, or in place with ``romfs=False``), the boot scripts and
    /data/device.json."""
    mpy_cross = _tool("mpy-cross")
    out.mkdir(parents=True, exist_ok=True)
    for src in sorted(firmware_dir.rglob("*.py")):
        rel = src.relative_to(firmware_dir).as_posix()
        if "__pycache__" in rel or rel in NOT_ON_BOARD:
            continue
        in_rom = romfs and rel.split("/", 1)[0] in ROM_PACKAGES
        dst = out / ROM_DIR / rel if in_rom else out / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if rel in SCRIPTS:
            shutil.copy(src, dst)
            continue
        proc = subprocess.run([mpy_cross, "-march=xtensawin", "-o", str(dst.with_suffix(".mpy")), str(src)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise FlashError(f"mpy-cross failed on {rel}: {proc.stderr.strip()}")
    data = out / DATA_DIR
    data.mkdir(exist_ok=True)
    write_private(data / "device.json", json.dumps(device))  # it holds the device secret: 0600 from the start
    return out


def mpremote_commands(port: str, staged: Path) -> list[list[str]]:
    """The mpremote invocations that send a staged tree to the board, then reset it:
    the packages to the ROMFS partition (when staged so), the rest to the filesystem."""
    mpremote = _tool("mpremote")
    entries = sorted(p.name for p in staged.iterdir() if p.name not in (ROM_DIR, ROM_IMAGE))
    rom = [mpremote, "connect", port, "romfs", "deploy", ROM_DIR, "+"] if (staged / ROM_DIR).is_dir() else \
        [mpremote, "connect", port]
    return [rom + ["fs", "cp", "-r", *entries, ":", "+", "reset"]]


def build_romfs(staged: Path) -> Path:
    """The image `romfs deploy` would write, built by mpremote itself (to check it off-board)."""
    proc = subprocess.run([_tool("mpremote"), "romfs", "--no-mpy", "-o", ROM_IMAGE, "build", ROM_DIR],
                          cwd=staged, capture_output=True, text=True)
    if proc.returncode != 0:
        raise FlashError(f"mpremote romfs build failed: {(proc.stderr or proc.stdout).strip()}")
    return staged / ROM_IMAGE


def flash(port: str, device_id: str, secret: str, broker_host: str, broker_port: int, profiles=None,
          dry_run: Path | None = None, romfs: bool = True) -> Path:
    device = device_config(device_id, secret, broker_host, broker_port, profiles)
    staged = stage(Path(dry_run) if dry_run else Path(tempfile.mkdtemp(prefix="pers-flash-")), device,
                   romfs=romfs)
    if dry_run:
        if romfs:
            build_romfs(staged)
        return staged
    for argv in mpremote_commands(port, staged):
        proc = subprocess.run(argv, cwd=staged, capture_output=True, text=True)
        if proc.returncode != 0:
            raise FlashError(f"mpremote failed: {(proc.stderr or proc.stdout).strip()}")
    shutil.rmtree(staged, ignore_errors=True)  # the secret does not stay on the PC
    return staged


def _host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="pers flash", description="compile the firmware, copy it to a watch, provision it")
    p.add_argument("--port", default="/dev/ttyUSB0", help="the board's serial port")
    p.add_argument("--device-id", required=True)
    p.add_argument("--secret", default=os.environ.get("PERS_DEVICE_SECRET"),
                   help="the device secret from `pers device add` (default: $PERS_DEVICE_SECRET)")
    p.add_argument("--broker", type=_host_port, required=True, help="HOST:PORT the watch connects to")
    p.add_argument("--profiles", type=Path, help="a JSON file with the virtual-SIM profile list")
    p.add_argument("--dry-run", type=Path, metavar="DIR", help="only stage the board's files in DIR")
    p.add_argument("--files", action="store_true",
                   help="copy the packages to the filesystem instead of the ROMFS partition (boards with PSRAM, "
                        "or MicroPython without ROMFS)")
    args = p.parse_args(argv)
    try:
        profiles = json.loads(args.profiles.read_text()) if args.profiles else None
        out = flash(args.port, args.device_id, args.secret, args.broker[0], args.broker[1], profiles,
                    dry_run=args.dry_run, romfs=not args.files)
    except (FlashError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"staged in {out}" if args.dry_run else f"flashed {args.device_id} on {args.port}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
