"""`pers flash` without a board: the staged image and the provisioning file."""
import json
import subprocess

from cloud.flash import main, mpremote_commands
from hwsim.firmware import find_micropython

PROFILES = [{"name": "fr-1", "mccmnc": ["20801", "20810"], "apn": "iot.fr", "priority": 1, "cost": 1.0}]


ROM_CHECK = """
import gc, os, sys, vfs
f = open("firmware.romfs", "rb")
rom = f.read()
f.close()
vfs.mount(vfs.VfsRom(rom), "/rom")
sys.path[:] = ["/rom"]
gc.collect()
before = gc.mem_alloc()
import app.mqttpkt, app.at, app.country
gc.collect()
print("imported", sorted(os.listdir("/rom")), gc.mem_alloc() - before)
"""


def test_dry_run_stages_compiled_firmware_for_the_romfs_partition_and_the_device_config(tmp_path):
    profiles = tmp_path / "profiles.json"
    profiles.write_text(json.dumps(PROFILES))
    out = tmp_path / "image"
    rc = main(["--device-id", "watch-42", "--secret", "s3cret", "--broker", "mqtt.example.org:8883",
               "--profiles", str(profiles), "--dry-run", str(out)])
    assert rc == 0
    files = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert {"main.py", "boot.py", "rom/app/watch.mpy", "rom/app/mqtt.mpy", "rom/hal/esp32.mpy",
            "rom/hal/__init__.mpy", "data/device.json", "firmware.romfs"} <= files
    assert not any(f.endswith(".py") and f not in ("main.py", "boot.py") for f in files)
    assert "rom/hal/sim.mpy" not in files and not any(f.startswith("app/") for f in files)
    device = json.loads((out / "data/device.json").read_text())
    assert device == {"id": "watch-42", "secret": "s3cret", "broker_host": "mqtt.example.org",
                      "broker_port": 8883, "profiles": PROFILES}
    assert (out / "data/device.json").stat().st_mode & 0o077 == 0
    (cmd,) = mpremote_commands("/dev/ttyUSB0", out)
    assert cmd[1:6] == ["connect", "/dev/ttyUSB0", "romfs", "deploy", "rom"] and cmd[-2:] == ["+", "reset"]
    copied = cmd[cmd.index("cp") + 2:cmd.index(":")]
    assert copied == ["boot.py", "data", "main.py"]  # the packages are in the ROMFS, not copied twice

    # The image mpremote built is one MicroPython mounts and imports from in place.
    proc = subprocess.run([find_micropython(), "-c", ROM_CHECK], cwd=out, capture_output=True, text=True,
                          timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("imported ['app', 'hal']"), proc.stdout


def test_files_mode_copies_the_packages_to_the_filesystem(tmp_path):
    out = tmp_path / "image"
    assert main(["--device-id", "w1", "--secret", "s", "--broker", "h:1", "--files", "--dry-run", str(out)]) == 0
    files = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert {"app/watch.mpy", "hal/esp32.mpy", "main.py", "data/device.json"} <= files
    assert not (out / "rom").exists() and not (out / "firmware.romfs").exists()
    (cmd,) = mpremote_commands("/dev/ttyUSB0", out)
    assert cmd[1:4] == ["connect", "/dev/ttyUSB0", "fs"] and "app" in cmd


def test_bad_input_is_refused_with_a_reason(tmp_path, capsys):
    assert main(["--device-id", "bad id!", "--secret", "s", "--broker", "h:1", "--dry-run", str(tmp_path)]) == 2
    assert "device id" in capsys.readouterr().err
    bad = tmp_path / "p.json"
    bad.write_text('[{"name": "x", "mccmnc": ["abc"], "apn": "a"}]')
    assert main(["--device-id", "w1", "--secret", "s", "--broker", "h:1", "--profiles", str(bad),
                 "--dry-run", str(tmp_path / "o")]) == 2
    assert "mccmnc" in capsys.readouterr().err
