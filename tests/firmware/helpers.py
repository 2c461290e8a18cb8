"""Running firmware code under the real MicroPython unix port."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

from hwsim.firmware import FIRMWARE_DIR, find_micropython

ROOT = Path(__file__).resolve().parents[2]
MPY_TESTS = Path(__file__).parent / "mpy"
FIXTURES = ROOT / "tests" / "fixtures" / "protocol"


def run_micropython(script: Path, *args: str, timeout: float = 30, **env: str) -> subprocess.CompletedProcess:
    """Run ``script`` with the firmware directory on MicroPython's path."""
    env = {**os.environ, "MICROPYPATH": f".frozen:{FIRMWARE_DIR}:{MPY_TESTS}",
           "PERS_FIXTURES": str(FIXTURES), **env}
    return subprocess.run([find_micropython(), "-X", "heapsize=1M", str(script), *args],
                          capture_output=True, text=True, timeout=timeout, env=env)
