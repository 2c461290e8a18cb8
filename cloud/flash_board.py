"""The board over its REPL (mpremote): who it is, and the file copy that survives its watchdog.

``probe(port)`` runs one script on the board (mpremote: Ctrl-C, raw REPL, soft
reset, which runs boot.py but not main.py) and reads back its identity;
``check_board`` refuses a board the files cannot run on. ``flash_files`` is the
whole ``pers flash files`` sequence (the why of each step: cloud/flash.py).
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

from cloud.flash import DATA_DIR, LIB_DIR, PACKAGES, FlashError, stage, staged_bytes, temp_stage_dir, tool

PROBE_TAG = "PERS-PROBE "
# Runs on the board. The frozen check looks in ".frozen" alone, so a copy on the
# filesystem does not answer for it.
PROBE = """
import gc, json, os, sys
def _has(p):
    try:
        os.stat(p)
        return True
    except OSError:
        return False
def _probe():
    u = os.uname()
    i = sys.implementation
    try:
        s = os.statvfs("/")
        free = s[0] * s[3]
    except (AttributeError, OSError):
        free = -1
    frozen = False
    if ".frozen" in sys.path:
        saved = sys.path[:]
        sys.path[:] = [".frozen"]
        try:
            __import__("app")
            frozen = True
        except ImportError:
            pass
        sys.path[:] = saved
    gc.collect()
    return {"sysname": u.sysname, "machine": u.machine, "release": u.release, "impl": i.name,
            "version": list(i.version[:3]), "mpy": getattr(i, "_mpy", 0), "path": list(sys.path),
            "free": free, "heap": gc.mem_free() + gc.mem_alloc(), "frozen_app": frozen,
            "present": [p for p in ("main.py", "main.py.parked", "app", "hal", "lib/app", "lib/hal")
                        if _has(p)]}
print("PERS-PROBE", json.dumps(_probe()))
"""
# The .mpy sub-version each MicroPython release line loads ("Versioning and
# compatibility of .mpy files", docs.micropython.org/en/latest/reference/mpyfiles.html):
# v6.1 from 1.20, v6.2 from 1.22, v6.3 from 1.23.
FIRST_RELEASE = {(6, 1): (1, 20), (6, 2): (1, 22), (6, 3): (1, 23)}
# Files mode loads about 96 KB of bytecode into the heap (docs/firmware.md, Heap budget)
# beside the app's 100 KiB: an ESP32 without PSRAM has about 110 KiB in all.
FILES_MIN_HEAP = 200 * 1024
SPACE_MARGIN = 16 * 1024  # the file system's own blocks for the directories and the app's first files
REBOOT_TRIES = 5


def mpremote(port: str, *args: str, timeout: float = 60) -> str:
    argv = [tool("mpremote"), "connect", port, *args]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise FlashError(f"mpremote timed out on {port} ({' '.join(args[:2])})") from exc
    if proc.returncode != 0:
        raise FlashError(f"mpremote on {port} failed: {(proc.stderr or proc.stdout).strip()[-800:]}")
    return proc.stdout


def probe(port: str) -> dict:
    out = mpremote(port, "exec", PROBE)
    for line in out.splitlines():
        if line.startswith(PROBE_TAG):
            return json.loads(line[len(PROBE_TAG):])
    raise FlashError(f"the board on {port} did not answer the identity check: {out.strip()[-400:]!r}")


def mpy_target(path: Path) -> tuple[int, int]:
    """(version, sub-version) the compiled files target. The version is in each
    file's header ('M', version, features, small-int bits: mpyfiles.html); the
    sub-version is written there only with native code, so it comes from the
    compiler ("mpy-cross emitting mpy v6.3")."""
    head = Path(path).read_bytes()[:4]
    if len(head) < 4 or head[0] != ord("M"):
        raise FlashError(f"{path} is not a .mpy file")
    out = subprocess.run([tool("mpy-cross"), "--version"], capture_output=True, text=True).stdout
    found = re.search(r"mpy v(\d+)\.(\d+)", out)
    if not found or int(found.group(1)) != head[1]:
        raise FlashError(f"mpy-cross says {out.strip()!r}, its files say mpy v{head[1]}")
    return head[1], int(found.group(2))


def check_board(board: dict, *, needs_packages: bool, mpy: tuple[int, int] | None, size: int) -> None:
    """Refuses, with the reason, a board the staged files cannot run on."""
    where = f"{board.get('sysname')} / {board.get('machine')} / MicroPython {board.get('release')}"
    if board.get("impl") != "micropython":
        raise FlashError(f"not a MicroPython board ({where})")
    if board.get("sysname") != "esp32" or "ESP32" not in str(board.get("machine")):
        raise FlashError(f"this board is not an ESP32 ({where}): the watch firmware is for the ESP32 "
                         "(LILYGO T-A7670E)")
    if mpy is not None and needs_packages:
        version, sub = board["mpy"] & 0xFF, (board["mpy"] >> 8) & 3
        floor = FIRST_RELEASE.get(mpy, (0, 0))
        if version != mpy[0] or tuple(board["version"][:2]) < floor:
            want = ".".join(map(str, floor))
            raise FlashError(f"this board runs MicroPython {board.get('release')} (mpy v{version}.{sub}); the "
                             f"compiled firmware is mpy v{mpy[0]}.{mpy[1]}, which needs MicroPython {want} or "
                             "newer: install a newer MicroPython first (docs/flashing.md)")
    if needs_packages and 0 <= board.get("heap", 0) < FILES_MIN_HEAP:
        raise FlashError(f"this board has {board['heap'] // 1024} KiB of heap: the app's code copied as files "
                         f"loads into it (about 96 KB) beside the app's 100 KiB. Use `pers flash image` (the app "
                         "frozen in flash) or a build with PSRAM (ESP32_GENERIC-SPIRAM)")
    if 0 <= board.get("free", -1) < size + SPACE_MARGIN:
        raise FlashError(f"not enough free flash on the board: {board['free'] // 1024} KiB free, "
                         f"{(size + SPACE_MARGIN) // 1024} KiB needed (erase it: docs/flashing.md)")
    if board.get("free", -1) < 0:
        raise FlashError("the board did not say how much flash is free (os.statvfs)")


def lib_first(board: dict) -> str:
    """Where the packages go: /lib, which must come after .frozen in sys.path."""
    path = board.get("path") or []
    if "/lib" not in path or (".frozen" in path and path.index("/lib") < path.index(".frozen")):
        raise FlashError(f"the board's sys.path is {path}: /lib must be on it, after .frozen")
    return LIB_DIR


# Removes what would shadow or outlive the new copy: packages at the root (an older
# `pers flash --files` put them there, before .frozen), the old /lib copies.
CLEAN = """
import os
def _rm(p):
    try:
        if os.stat(p)[0] & 0x4000:
            for n in os.listdir(p):
                _rm(p + "/" + n)
            os.rmdir(p)
        else:
            os.remove(p)
    except OSError:
        pass
for _p in %r:
    _rm(_p)
"""
PARK = "import os\nos.rename('main.py', 'main.py.parked')"


def wait_for_board(port: str) -> dict:
    last = None
    for _ in range(REBOOT_TRIES):  # the board is booting: its first Ctrl-C may fall in the boot ROM
        try:
            return probe(port)
        except FlashError as exc:
            last = exc
    raise FlashError(f"the board did not come back after its reset: {last}")


def flash_files(port: str, device: dict, ca: bytes | None, *, packages: bool = True, log=print) -> dict:
    """The ``pers flash files`` sequence (and the provisioning after ``pers flash image``)."""
    try:
        board = probe(port)
    except FlashError as exc:
        raise FlashError(f"{exc}\nThe board did not answer on its REPL. A running app may not hear mpremote's "
                         "Ctrl-C while it idles in light sleep: hold the black button while pressing RST (safe "
                         "mode: no app, no watchdog), then run pers flash again") from exc
    log(f"board: {board['machine']}, MicroPython {board['release']}, {board['heap'] // 1024} KiB heap, "
        f"{board['free'] // 1024} KiB flash free")
    if board["frozen_app"] and packages:
        log("the app is frozen in this board's image: its packages are not copied (they would not be used; "
            "`pers flash image` updates them)")
    packages = packages and not board["frozen_app"]
    check_board(board, needs_packages=packages, mpy=None, size=0)  # who it is, before compiling anything
    staged = temp_stage_dir()
    try:
        stage(staged, device, ca, packages=packages)
        mpy = mpy_target(next((staged / LIB_DIR / "app").glob("*.mpy"))) if packages else None
        check_board(board, needs_packages=packages, mpy=mpy, size=staged_bytes(staged))
        lib = lib_first(board) if packages else None
        if "main.py" in board["present"]:
            # Its watchdog may be running: park main.py, then a hard reset ends it.
            log("parking main.py and resetting the board (its watchdog cannot be stopped otherwise)")
            mpremote(port, "exec", PARK, "+", "reset")
            board = wait_for_board(port)
            if "main.py" in board["present"]:
                raise FlashError("main.py is still on the board after parking it")
        stale = ["app", "hal"] + [f"{LIB_DIR}/{p}" for p in PACKAGES]
        copy = ["exec", CLEAN % (stale,) + "\ntry:\n    os.mkdir('data')\nexcept OSError:\n    pass\n", "+"]
        if lib:
            copy += ["fs", "cp", "-r", lib, ":", "+"]
        copy += ["fs", "cp", "boot.py", ":boot.py", "+"]
        copy += ["fs", "cp", *(str(p.relative_to(staged)) for p in sorted((staged / DATA_DIR).iterdir())),
                 ":" + DATA_DIR + "/", "+"]
        # main.py last: a copy cut short leaves a board that boots to the REPL, not a half app.
        copy += ["fs", "cp", "main.py", ":main.py", "+", "exec", CLEAN % (["main.py.parked"],), "+", "reset"]
        log(f"copying {staged_bytes(staged) // 1024} KiB" + (" (app, hal to /lib)" if lib else "")
            + ", then resetting the board")
        _mpremote_in(staged, port, copy)
    finally:
        shutil.rmtree(staged, ignore_errors=True)  # the secret does not stay on the PC
    return board


def _mpremote_in(cwd: Path, port: str, args: list[str], timeout: float = 300) -> None:
    proc = subprocess.run([tool("mpremote"), "connect", port, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)
    if proc.returncode != 0:
        raise FlashError(f"mpremote copy on {port} failed: {(proc.stderr or proc.stdout).strip()[-800:]}")
