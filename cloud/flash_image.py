"""``pers flash image``: a MicroPython firmware with the app frozen in, written with esptool.

The image is built in a MicroPython source tree (``ports/esp32``, ``make
BOARD=... FROZEN_MANIFEST=firmware/manifest.py``), which needs the ESP-IDF:
``build_env`` says exactly what is missing and how to get it. A prebuilt image
(``--image firmware.bin``) skips the build. esptool checks the chip first
(``read-mac`` with ``--chip esp32``: it refuses another chip) and the image
names its chip in its header (``image-info``). The ESP32's combined
``firmware.bin`` (second-stage bootloader, partition table, app) goes at 0x1000,
where the ROM looks for the bootloader (MicroPython's esp32 deploy
instructions: ``esptool --chip esp32 ... write_flash -z 0x1000 firmware.bin``).
The credentials and CA follow over the REPL, as in files mode.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from cloud.flash import FIRMWARE_DIR, FlashError, stage, tool

CHIP = "esp32"
OFFSET = "0x1000"
MANIFEST = FIRMWARE_DIR / "manifest.py"
IDF_HOWTO = ("git clone -b <the version ports/esp32/README.md names> --recursive "
             "https://github.com/espressif/esp-idf.git && cd esp-idf && ./install.sh esp32 && . ./export.sh")
MICROPYTHON_HOWTO = ("git clone https://github.com/micropython/micropython && make -C micropython/mpy-cross && "
                     "make -C micropython/ports/esp32 submodules, then --micropython micropython (or $MICROPY_DIR)")


def build_env(micropython: Path | None, environ=os.environ) -> list[str]:
    """What the image build lacks on this machine: one line each, with how to get it."""
    missing = []
    idf = environ.get("IDF_PATH")
    if not idf or not (Path(idf) / "tools" / "idf.py").exists():
        missing.append(f"the ESP-IDF ($IDF_PATH{' = ' + idf if idf else ' is not set'}; no tools/idf.py): {IDF_HOWTO}")
    elif not shutil.which("xtensa-esp32-elf-gcc", path=environ.get("PATH")):
        missing.append(f"the ESP-IDF's toolchain is not on PATH (xtensa-esp32-elf-gcc): . {idf}/export.sh")
    for prog in ("make", "cmake"):
        if not shutil.which(prog, path=environ.get("PATH")):
            missing.append(f"{prog} (apt install {prog})")
    if micropython is None:
        missing.append(f"a MicroPython source tree: {MICROPYTHON_HOWTO}")
    elif not (Path(micropython) / "ports" / "esp32" / "Makefile").exists():
        missing.append(f"{micropython} is not a MicroPython source tree (no ports/esp32/Makefile): {MICROPYTHON_HOWTO}")
    return missing


def build_command(micropython: Path, board: str, variant: str) -> tuple[list[str], Path]:
    port = Path(micropython) / "ports" / "esp32"
    argv = ["make", "-C", str(port), f"BOARD={board}", f"FROZEN_MANIFEST={MANIFEST}"]
    build = f"build-{board}"
    if variant:
        argv.append(f"BOARD_VARIANT={variant}")
        build += f"-{variant}"
    return argv, port / build / "firmware.bin"


def build(micropython: Path | None, board: str, variant: str) -> Path:
    missing = build_env(micropython)
    if missing:
        raise FlashError("cannot build the image here; missing:\n  - " + "\n  - ".join(missing)
                         + "\nor pass a prebuilt image with --image firmware.bin")
    assert micropython is not None
    argv, image = build_command(micropython, board, variant)
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode != 0 or not image.exists():
        raise FlashError(f"the image build failed: {(proc.stderr or proc.stdout).strip()[-1500:]}")
    return image


def esptool(*args: str, timeout: float = 300) -> str:
    proc = subprocess.run([tool("esptool"), *args], capture_output=True, text=True, timeout=timeout)
    out = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise FlashError(f"esptool {args[-1] if args else ''} failed: {out.strip()[-800:]}")
    return out


def image_chip(image: Path) -> str:
    """The chip an image was built for, as esptool reads its header."""
    out = esptool("image-info", str(image), timeout=60)
    found = re.search(r"(?:Detected image type|Image type|Chip ID)\W+(ESP32[-\w]*)", out, re.I) or \
        re.search(r"\b(ESP32(?:-?[A-Z]\d+)?)\b", out)
    if not found:
        raise FlashError(f"{image} is not an ESP image esptool can read: {out.strip()[-400:]}")
    return found.group(1).upper().replace("-", "")


def board_identity(port: str, baud: int) -> dict:
    """Chip and MAC over the ROM bootloader; esptool itself refuses a chip that is not an ESP32."""
    try:
        out = esptool("--chip", CHIP, "--port", port, "--baud", str(baud), "read-mac", timeout=60)
    except FlashError as exc:
        wrong = re.search(r"This chip is (\S+), not", str(exc))
        if wrong:
            raise FlashError(f"the board on {port} is an {wrong.group(1)}, not an ESP32: this image is for "
                             "the ESP32 (LILYGO T-A7670E)") from exc
        raise
    chip = re.search(r"Chip (?:is|type:)\s*([^\s(]+)", out)
    mac = re.search(r"MAC:\s*([0-9a-f:]{17})", out, re.I)
    return {"chip": chip.group(1) if chip else "?", "mac": mac.group(1) if mac else "?"}


def write_commands(port: str, baud: int, image: Path, erase: bool) -> list[list[str]]:
    base = ["--chip", CHIP, "--port", port, "--baud", str(baud)]
    cmds = [base + ["erase-flash"]] if erase else []
    return cmds + [base + ["write-flash", "-z", OFFSET, str(image)]]


def run(args, device: dict, ca: bytes | None) -> None:
    image = args.image or build(args.micropython, args.board, args.variant)
    if not Path(image).is_file():
        raise FlashError(f"no image at {image}")
    chip = image_chip(image)
    if chip != CHIP.upper():
        raise FlashError(f"{image} is an {chip} image, not an {CHIP.upper()} one")
    if args.dry_run:
        # The scripts and credentials that follow the image (its packages are frozen).
        stage(args.dry_run, device, ca, packages=False)
        shutil.copy(image, Path(args.dry_run) / "firmware.bin")
        return
    who = board_identity(args.port, args.baud)
    print(f"board: {who['chip']}, MAC {who['mac']}")
    for cmd in write_commands(args.port, args.baud, image, args.erase):
        esptool(*cmd)
    from cloud.flash_board import flash_files, wait_for_board
    wait_for_board(args.port)  # the new image has booted (esptool reset it) and answers on its REPL
    flash_files(args.port, device, ca, packages=False)
