"""`pers flash` without a board: staging, the image checks, and the files sequence
with the real mpremote over a pseudo-terminal that speaks MicroPython's raw REPL
(tests/firmware/replboard.py), then the flashed filesystem booted in hwsim."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from cloud.flash import FIRMWARE_DIR, FlashError, main
from cloud.flash_board import check_board, flash_files, lib_first
from cloud.flash_image import build_env
from hwsim.runner import Watch

from .conftest import DEV, SECRET
from .replboard import ReplBoard

PROFILES = [{"name": "fr-1", "mccmnc": ["20801", "20810"], "apn": "iot.fr", "priority": 1, "cost": 1.0}]
CA = b"-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"
# An app from before: its main.py starts a watchdog at boot, as firmware/main.py does.
OLD_APP = "import machine\nwdt = machine.WDT(timeout=30000)\nprint('old app running')\n"


def files_on(root):
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def test_dry_run_stages_packages_in_lib_and_the_credentials_with_the_ca(tmp_path):
    (tmp_path / "profiles.json").write_text(json.dumps(PROFILES))
    (tmp_path / "ca.crt").write_bytes(CA)
    out = tmp_path / "staged"
    rc = main(["files", "--device-id", "watch-42", "--secret", "s3cret", "--broker", "mqtt.example.org",
               "--profiles", str(tmp_path / "profiles.json"), "--ca", str(tmp_path / "ca.crt"), "--dry-run", str(out)])
    assert rc == 0
    files = files_on(out)
    assert {"main.py", "boot.py", "lib/app/watch.mpy", "lib/hal/esp32.mpy", "data/device.json", "data/ca.pem"} <= files
    assert "lib/hal/sim.mpy" not in files and not any(f.startswith(("app/", "hal/")) for f in files)
    # A CA means TLS, to 8883 when no port is given (the contract with the firmware's TLS);
    # a flashed watch deep-sleeps when idle (the standby figure's design).
    assert json.loads((out / "data/device.json").read_text()) == {
        "id": "watch-42", "secret": "s3cret", "broker_host": "mqtt.example.org", "broker_port": 8883,
        "profiles": PROFILES, "tls": True, "deep_sleep_after_s": 10}
    assert (out / "data/ca.pem").read_bytes() == CA
    assert (out / "data/device.json").stat().st_mode & 0o077 == 0
    # The default CA is the broker's, under the data dir; --no-tls goes without.
    (tmp_path / "var/broker/tls").mkdir(parents=True)
    (tmp_path / "var/broker/tls/ca.crt").write_bytes(CA)
    assert main(["files", "--device-id", "w1", "--secret", "s", "--broker", "h", "--data-dir", str(tmp_path / "var"),
                 "--dry-run", str(tmp_path / "d2")]) == 0
    assert json.loads((tmp_path / "d2/data/device.json").read_text())["tls"] is True
    assert main(["files", "--device-id", "w1", "--secret", "s", "--broker", "h", "--no-tls", "--deep-sleep-after", "0",
                 "--dry-run", str(tmp_path / "d3")]) == 0
    assert "deep_sleep_after_s" not in json.loads((tmp_path / "d3/data/device.json").read_text())


def test_bad_input_is_refused_with_a_reason(tmp_path, capsys):
    assert main(["files", "--device-id", "bad id!", "--secret", "s", "--broker", "h:1", "--no-tls",
                 "--dry-run", str(tmp_path)]) == 2
    assert "device id" in capsys.readouterr().err
    bad = tmp_path / "p.json"
    bad.write_text('[{"name": "x", "mccmnc": ["abc"], "apn": "a"}]')
    assert main(["files", "--device-id", "w1", "--secret", "s", "--broker", "h:1", "--profiles", str(bad),
                 "--no-tls", "--dry-run", str(tmp_path / "o")]) == 2
    assert "mccmnc" in capsys.readouterr().err


def test_image_mode_checks_the_image_chip_and_says_what_the_build_lacks(tmp_path, capsys):
    # Images made by esptool's own image writer (esptool.bin_image), read back by its image-info.
    from esptool.bin_image import ESP32FirmwareImage, ESP32S3FirmwareImage, ImageSegment
    for cls, name in ((ESP32FirmwareImage, "esp32.bin"), (ESP32S3FirmwareImage, "esp32s3.bin")):
        img = cls()
        img.entrypoint = 0x40080000
        seg = ImageSegment(0x3FFB0000, b"\x00" * 64)
        seg.name = "dram"
        img.segments = [seg]
        img.save(str(tmp_path / name))
    common = ["--device-id", "w1", "--secret", "s", "--broker", "h:1", "--no-tls"]
    assert main(["image", *common, "--image", str(tmp_path / "esp32s3.bin"), "--dry-run", str(tmp_path / "o")]) == 2
    assert "ESP32S3 image, not an ESP32" in capsys.readouterr().err
    assert main(["image", *common, "--image", str(tmp_path / "esp32.bin"), "--dry-run", str(tmp_path / "o")]) == 0
    staged = files_on(tmp_path / "o")
    assert {"firmware.bin", "main.py", "data/device.json"} <= staged and not any(f.startswith("lib/") for f in staged)
    plain = json.loads((tmp_path / "o/data/device.json").read_text())
    assert "tls" not in plain and plain["broker_port"] == 1 and "data/ca.pem" not in staged
    # No ESP-IDF on this machine: the build says what is missing and how to get it.
    missing = build_env(None, environ={"PATH": "/usr/bin:/bin"})
    assert any("ESP-IDF" in m and "install.sh esp32" in m for m in missing)
    assert any("MicroPython source tree" in m for m in missing)
    assert main(["image", *common, "--micropython", str(tmp_path), "--dry-run", str(tmp_path / "o2")]) == 2
    err = capsys.readouterr().err
    assert "cannot build the image here" in err and "--image firmware.bin" in err


def test_a_board_without_psram_is_refused_before_anything_is_written(tmp_path, capsys):
    root = tmp_path / "board"
    root.mkdir()
    with ReplBoard(root, heap="110k") as board:  # an ESP32 without PSRAM: about 110 KiB of heap
        rc = main(["files", "--port", board.port, "--device-id", DEV, "--secret", SECRET,
                   "--broker", "127.0.0.1:1883", "--no-tls"])
    assert rc == 2
    assert "KiB of heap" in capsys.readouterr().err
    assert files_on(root) == set() and board.hard_resets == 0


def test_files_mode_over_the_raw_repl_then_the_flashed_watch_boots_and_connects(tmp_path, broker, cloud):
    root = tmp_path / "board"
    (root / "app").mkdir(parents=True)
    (root / "main.py").write_text(OLD_APP)
    (root / "app" / "__init__.py").write_text("raise ImportError('stale copy at the root')\n")  # old layout
    with ReplBoard(root) as board:
        assert board.watchdog_running()  # the old app started one at power-on
        proc = subprocess.run([str(Path(sys.executable).parent / "pers"), "flash", "files", "--port", board.port,
                               "--device-id", DEV, "--secret", SECRET, "--broker", f"127.0.0.1:{broker.port}",
                               "--no-tls"], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "parking main.py" in proc.stdout
        # Parked and hard-reset (the watchdog gone), copied, reset again into the new main.py.
        assert board.wait_hard_resets(2)
        assert board.hard_resets == 2 and board.writes_under_watchdog == 0
        assert board.scripts_run[-1] == "main.py"
    files = files_on(root)
    assert {"main.py", "boot.py", "lib/app/watch.mpy", "lib/hal/esp32.mpy", "data/device.json"} <= files
    assert not any(f.startswith("app/") for f in files) and "main.py.parked" not in files
    assert (root / "main.py").read_text() == (FIRMWARE_DIR / "main.py").read_text()
    assert json.loads((root / "data/device.json").read_text())["secret"] == SECRET
    assert b"old app running" in bytes(board.console)

    # The board's filesystem, as flashed, runs in hwsim: the watch boots and connects
    # to the broker with the credentials pers flash wrote (Mosquitto checks them).
    with Watch("unused", "unused", ("127.0.0.1", 1), board_fs=root, speed=20) as watch:
        hello = cloud.wait("status", timeout=30)
        assert hello and watch.wait_display("Ready", 10)


def test_board_checks_refuse_what_the_files_cannot_run_on():
    # os.uname() and sys.implementation as a stock ESP32_GENERIC-SPIRAM 1.24.1 answers them
    # (docs.micropython.org, esp32 quickref; _mpy: version | sub-version << 8 | arch << 10,
    # arch 10 = xtensawin, "Versioning and compatibility of .mpy files").
    esp32 = {"impl": "micropython", "sysname": "esp32", "machine": "Generic ESP32 module with SPIRAM with ESP32",
             "release": "1.24.1", "version": [1, 24, 1], "mpy": 6 | 3 << 8 | 10 << 10,
             "path": ["", ".frozen", "/lib"], "free": 2_000_000, "heap": 4_000_000}
    check_board(esp32, needs_packages=True, mpy=(6, 3), size=200_000)
    cases = [({"sysname": "rp2", "machine": "Raspberry Pi Pico with RP2040"}, "not an ESP32"),
             ({"release": "1.22.2", "version": [1, 22, 2], "mpy": 6 | 2 << 8 | 10 << 10}, "needs MicroPython 1.23"),
             ({"release": "1.18", "version": [1, 18, 0], "mpy": 5 | 10 << 10}, "mpy v5"),
             ({"free": 100_000}, "not enough free flash"),
             ({"heap": 110 * 1024}, "KiB of heap")]
    for change, reason in cases:
        with pytest.raises(FlashError, match=reason):
            check_board({**esp32, **change}, needs_packages=True, mpy=(6, 3), size=200_000)
    # A board with the app frozen takes no packages: neither heap nor .mpy version matter then.
    check_board({**esp32, "heap": 110 * 1024}, needs_packages=False, mpy=None, size=10_000)
    with pytest.raises(FlashError, match="after .frozen"):
        lib_first({"path": ["", "/lib", ".frozen"]})


def test_provisioning_after_an_image_writes_the_credentials_and_ca_and_clears_old_copies(tmp_path):
    # What `pers flash image` does once esptool has written the image: no packages
    # (they are frozen), the scripts, device.json with TLS and the CA, and no copy
    # left in /lib or / from a files install before.
    root = tmp_path / "board"
    for stale in ("lib/app/watch.mpy", "hal/esp32.mpy"):
        (root / stale).parent.mkdir(parents=True, exist_ok=True)
        (root / stale).write_bytes(b"M\x06")
    device = {"id": DEV, "secret": SECRET, "broker_host": "mqtt.example.org", "broker_port": 8883, "profiles": [],
              "tls": True}
    with ReplBoard(root) as board:
        flash_files(board.port, device, CA, packages=False, log=lambda line: None)
        assert board.wait_hard_resets(1)  # the final reset only: there was no main.py to park
        assert board.hard_resets == 1
    assert files_on(root) == {"main.py", "boot.py", "data/device.json", "data/ca.pem"}
    assert json.loads((root / "data/device.json").read_text()) == device
    assert (root / "data/ca.pem").read_bytes() == CA


def _frozen_by_manifest() -> dict[str, set[str]]:
    """What firmware/manifest.py freezes into an image, per package, read as MicroPython's
    makemanifest.py reads it: the file is Python calling include/package/module."""
    frozen: dict[str, set[str]] = {}

    def package(name, files=None, base_path=".", opt=None):
        root = FIRMWARE_DIR / base_path / name
        frozen[name] = set(files) if files else {p.relative_to(root).as_posix() for p in root.rglob("*.py")}

    def module(name, base_path=".", opt=None):
        frozen.setdefault("", set()).add(name)

    exec((FIRMWARE_DIR / "manifest.py").read_text(), {"include": lambda *a, **k: None, "package": package,
                                                       "module": module})
    return frozen


def _board_imports() -> set[str]:
    """Every firmware module a watch can import (app and hal, the simulator's board aside)."""
    import ast
    names: set[str] = set()
    for src in sorted(FIRMWARE_DIR.rglob("*.py")):
        rel = src.relative_to(FIRMWARE_DIR).as_posix()
        if rel in ("hal/sim.py", "manifest.py"):
            continue
        for node in ast.walk(ast.parse(src.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in ("app", "hal"):
                if node.module in ("app", "hal"):
                    names |= {f"{node.module}.{a.name}" for a in node.names}
                else:
                    names.add(node.module)
            elif isinstance(node, ast.Import):
                names |= {a.name for a in node.names if a.name.split(".")[0] in ("app", "hal") and "." in a.name}
    return names


def test_an_image_freezes_every_module_the_watch_imports():
    # An image carries no app or hal files of its own: a module the board imports and
    # the manifest leaves out is an ImportError at boot (a watch dead on the board).
    frozen = _frozen_by_manifest()
    modules = {n for n in _board_imports() if (FIRMWARE_DIR / (n.replace(".", "/") + ".py")).exists()}
    modules.discard("hal.sim")  # hal.board() takes it only off the ESP32
    assert {"hal.lis3dh", "hal.st7789", "app.fall"} <= modules  # the scan sees the imports
    missing = sorted(n for n in modules if n.split(".")[1] + ".py" not in frozen.get(n.split(".")[0], set()))
    assert not missing, missing
    assert "sim.py" not in frozen["hal"]
