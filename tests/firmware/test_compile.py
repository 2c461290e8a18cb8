"""Every firmware file must compile with mpy-cross (the board runs .mpy)."""
import subprocess
import sys
from pathlib import Path

import pytest

from hwsim.firmware import FIRMWARE_DIR

FILES = sorted(FIRMWARE_DIR.rglob("*.py"))


def mpy_cross() -> str:
    return str(Path(sys.executable).parent / "mpy-cross")


def test_there_is_firmware():
    names = {p.relative_to(FIRMWARE_DIR).as_posix() for p in FILES}
    assert {"boot.py", "main.py", "hal/esp32.py", "hal/sim.py", "app/mqtt.py"} <= names


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.relative_to(FIRMWARE_DIR).as_posix())
def test_compiles(path, tmp_path):
    out = subprocess.run([mpy_cross(), "-o", str(tmp_path / "out.mpy"), str(path)],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_app_never_touches_hardware():
    for path in (FIRMWARE_DIR / "app").rglob("*.py"):
        for line in path.read_text().splitlines():
            words = line.split()
            if words[:1] in (["import"], ["from"]) and len(words) > 1:
                assert words[1].split(".")[0] not in ("machine", "esp32", "network"), f"{path}: {line}"
