"""Flashing a watch: ``pers flash image`` or ``pers flash files``, then its credentials.

Two ways to put the firmware on a board (docs/flashing.md walks a new user through both):

- **image** (``cloud/flash_image.py``): a MicroPython firmware with the ``app`` and
  ``hal`` packages frozen in (``firmware/manifest.py``), built with the ESP-IDF or
  given prebuilt (``--image firmware.bin``), written with esptool. The bytecode
  runs from flash and the app keeps the heap.
- **files**: a stock MicroPython build, and the packages compiled by mpy-cross,
  copied with mpremote to ``/lib``. ``sys.path`` on a MicroPython board is
  ``['', '.frozen', '/lib']``: ``/lib`` comes after the frozen modules, so a copy
  can never shadow a frozen app (a copy in ``/`` would). The bytecode is loaded
  into the heap (about 96 KB): a board without PSRAM is refused.

Both then write the device's id, secret and broker (``/data/device.json``) and the
broker's CA (``/data/ca.pem``, with ``"tls": true``), over mpremote, after checking
the board's identity (``cloud/flash_board.py``). ``--dry-run DIR`` only stages the
files (no board needed).

The watchdog: ``main.py`` starts a 30 s watchdog that an ESP32 cannot stop. mpremote
interrupts the app (Ctrl-C) and soft-resets into the raw REPL, where ``main.py``
does not run, but a watchdog started at the last hard boot keeps counting and
would reset the board in the middle of the copy. So before copying, a board
with a ``main.py`` gets it renamed to ``main.py.parked`` and is hard-reset
(``machine.reset()``: the watchdog dies with the reset, and nothing starts one
at the next boot); ``main.py`` goes back last, after everything it imports.
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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from cloud.files import write_private

FIRMWARE_DIR = Path(__file__).resolve().parents[1] / "firmware"
SCRIPTS = ("main.py", "boot.py")          # run from source by the board's boot sequence
NOT_ON_BOARD = ("hal/sim.py", "manifest.py")  # the simulator's HAL; the image build's manifest
DATA_DIR = "data"                         # FLASH_DIR of firmware/hal/esp32.py, without the slash
LIB_DIR = "lib"                           # after ".frozen" in the board's sys.path
PACKAGES = ("app", "hal")
DEVICE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
PROFILE_FIELDS = {"name": str, "mccmnc": list, "apn": str}
PLAIN_PORT, TLS_PORT = 1883, 8883


class FlashError(ValueError):
    pass


def tool(name: str) -> str:
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


# What a flashed watch gets: idle 10 s, it deep-sleeps until its next check-in
# (what the standby figure of docs/figures.md is measured with). A watch with
# reminders or a check-in time also wakes for each (app/reminders.py).
DEEP_SLEEP_AFTER_S = 10


def device_config(device_id: str, secret: str, broker_host: str, broker_port: int | None, profiles=None,
                  tls: bool = False, deep_sleep_after_s: int = 0) -> dict:
    """/data/device.json. With a CA the watch speaks TLS, to port 8883 unless told otherwise.
    ``deep_sleep_after_s``: idle that long, the watch deep-sleeps until its next
    check-in (docs/figures.md, "Standby"); 0 keeps it in light sleep."""
    if not DEVICE_ID.match(device_id or ""):
        raise FlashError(f"device id must match {DEVICE_ID.pattern}")
    if not secret:
        raise FlashError("the device secret is required (--secret or $PERS_DEVICE_SECRET, from `pers device add`)")
    port = broker_port if broker_port is not None else (TLS_PORT if tls else PLAIN_PORT)
    if not broker_host or not 0 < int(port) < 65536:
        raise FlashError("broker must be HOST or HOST:PORT with a port from 1 to 65535")
    device = {"id": device_id, "secret": secret, "broker_host": broker_host, "broker_port": int(port),
              "profiles": check_profiles(profiles)}
    if tls:
        device["tls"] = True
    if deep_sleep_after_s < 0:
        raise FlashError("--deep-sleep-after is a number of seconds, 0 for never")
    if deep_sleep_after_s:
        device["deep_sleep_after_s"] = deep_sleep_after_s
    return device


def read_ca(path: Path) -> bytes:
    pem = Path(path).read_bytes()
    if b"-----BEGIN CERTIFICATE-----" not in pem:
        raise FlashError(f"{path} is not a PEM certificate")
    return pem


def default_ca(data_dir: Path) -> Path | None:
    ca = Path(data_dir) / "broker" / "tls" / "ca.crt"
    return ca if ca.exists() else None


def stage(out: Path, device: dict, ca: bytes | None = None, firmware_dir: Path = FIRMWARE_DIR, *,
          packages: bool = True) -> Path:
    """The board's files in ``out``: the compiled packages under ``lib/`` (unless
    ``packages`` is False: the board has them frozen), the boot scripts,
    /data/device.json and /data/ca.pem."""
    mpy_cross = tool("mpy-cross")
    out.mkdir(parents=True, exist_ok=True)
    jobs = []
    for src in sorted(firmware_dir.rglob("*.py")):
        rel = src.relative_to(firmware_dir).as_posix()
        if "__pycache__" in rel or rel in NOT_ON_BOARD:
            continue
        if rel in SCRIPTS:
            shutil.copy(src, out / rel)
            continue
        if not packages:
            continue
        dst = out / LIB_DIR / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        jobs.append((rel, [mpy_cross, "-march=xtensawin", "-s", rel, "-o", str(dst.with_suffix(".mpy")), str(src)]))
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:  # one mpy-cross per core
        for rel, proc in zip([r for r, _ in jobs],
                             pool.map(lambda job: subprocess.run(job[1], capture_output=True, text=True), jobs)):
            if proc.returncode != 0:
                raise FlashError(f"mpy-cross failed on {rel}: {proc.stderr.strip()}")
    data = out / DATA_DIR
    data.mkdir(exist_ok=True)
    write_private(data / "device.json", json.dumps(device))  # it holds the device secret: 0600 from the start
    if ca is not None:
        (data / "ca.pem").write_bytes(ca)
    return out


def staged_bytes(staged: Path) -> int:
    return sum(p.stat().st_size for p in staged.rglob("*") if p.is_file())


def _host_port(text: str) -> tuple[str, int | None]:
    host, sep, port = text.rpartition(":")
    if not sep:
        return text, None
    if not port.isdigit() or not host:
        raise argparse.ArgumentTypeError(f"expected HOST or HOST:PORT, got {text!r}")
    return host, int(port)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pers flash", description="put the firmware on a watch and provision it "
                                "(docs/flashing.md)")
    modes = p.add_subparsers(dest="mode", required=True)
    image = modes.add_parser("image", help="a MicroPython image with the app frozen in, written with esptool")
    files = modes.add_parser("files", help="the compiled app copied with mpremote onto a stock MicroPython")
    for sp in (image, files):
        sp.add_argument("--port", default="/dev/ttyUSB0", help="the board's serial port")
        sp.add_argument("--device-id", required=True)
        sp.add_argument("--secret", default=os.environ.get("PERS_DEVICE_SECRET"),
                        help="the device secret from `pers device add` (default: $PERS_DEVICE_SECRET)")
        sp.add_argument("--broker", type=_host_port, required=True,
                        help="HOST[:PORT] the watch connects to (port: 8883 with a CA, else 1883)")
        sp.add_argument("--ca", type=Path, help="the broker's CA certificate, copied to /data/ca.pem (TLS); "
                        "default: <data>/broker/tls/ca.crt when it exists")
        sp.add_argument("--no-tls", action="store_true", help="no CA, plain MQTT (a broker on a private network)")
        sp.add_argument("--profiles", type=Path, help="a JSON file with the virtual-SIM profile list")
        sp.add_argument("--deep-sleep-after", type=int, default=DEEP_SLEEP_AFTER_S, metavar="S",
                        help="idle S seconds, the watch deep-sleeps until its next check-in (the standby of "
                             "docs/figures.md); 0: light sleep only (default: %(default)s)")
        sp.add_argument("--dry-run", type=Path, metavar="DIR", help="only stage the board's files in DIR")
        sp.add_argument("--data-dir", type=Path, help="where the cloud keeps its data (default: $PERS_DATA_DIR)")
    image.add_argument("--image", type=Path, help="a prebuilt firmware.bin (else built with the ESP-IDF)")
    image.add_argument("--micropython", type=Path, default=os.environ.get("MICROPY_DIR"),
                       help="a MicroPython source tree to build in (default: $MICROPY_DIR)")
    image.add_argument("--board", default="ESP32_GENERIC", help="the MicroPython board to build")
    image.add_argument("--variant", default="SPIRAM", help="the board variant ('' for none)")
    image.add_argument("--baud", type=int, default=460800, help="esptool's baud rate")
    image.add_argument("--erase", action="store_true", help="erase the whole flash first (a first install)")
    return p


def _data_dir(args) -> Path:
    if args.data_dir:
        return args.data_dir
    from cloud.settings import get_settings
    return Path(get_settings().data_dir)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        ca_path = None if args.no_tls else (args.ca or default_ca(_data_dir(args)))
        ca = read_ca(ca_path) if ca_path else None
        profiles = json.loads(args.profiles.read_text()) if args.profiles else None
        device = device_config(args.device_id, args.secret, args.broker[0], args.broker[1], profiles,
                               tls=ca is not None, deep_sleep_after_s=args.deep_sleep_after)
        from cloud import flash_board
        if args.mode == "image":
            from cloud import flash_image
            flash_image.run(args, device, ca)
        elif args.dry_run:
            stage(args.dry_run, device, ca)
        else:
            flash_board.flash_files(args.port, device, ca)
    except (FlashError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.dry_run:
        print(f"staged in {args.dry_run}" + (" (TLS: /data/ca.pem)" if ca else ""))
    else:
        print(f"flashed {args.device_id} on {args.port}" + (" (TLS, CA from " + str(ca_path) + ")" if ca else ""))
    return 0


def temp_stage_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="pers-flash-"))


if __name__ == "__main__":
    sys.exit(main())
