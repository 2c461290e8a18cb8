"""`pers flash` without a board: the staged image and the provisioning file."""
import json

from cloud.flash import main, mpremote_commands

PROFILES = [{"name": "fr-1", "mccmnc": ["20801", "20810"], "apn": "iot.fr", "priority": 1, "cost": 1.0}]


def test_dry_run_stages_compiled_firmware_and_device_config(tmp_path):
    profiles = tmp_path / "profiles.json"
    profiles.write_text(json.dumps(PROFILES))
    out = tmp_path / "image"
    rc = main(["--device-id", "watch-42", "--secret", "s3cret", "--broker", "mqtt.example.org:8883",
               "--profiles", str(profiles), "--dry-run", str(out)])
    assert rc == 0
    files = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert {"main.py", "boot.py", "app/watch.mpy", "app/mqtt.mpy", "hal/esp32.mpy", "hal/__init__.mpy",
            "data/device.json"} <= files
    assert not any(f.endswith(".py") and f not in ("main.py", "boot.py") for f in files)
    assert "hal/sim.mpy" not in files
    device = json.loads((out / "data/device.json").read_text())
    assert device == {"id": "watch-42", "secret": "s3cret", "broker_host": "mqtt.example.org",
                      "broker_port": 8883, "profiles": PROFILES}
    assert (out / "data/device.json").stat().st_mode & 0o077 == 0
    (cmd,) = mpremote_commands("/dev/ttyUSB0", out)
    assert cmd[1:4] == ["connect", "/dev/ttyUSB0", "fs"] and cmd[-2:] == ["+", "reset"]


def test_bad_input_is_refused_with_a_reason(tmp_path, capsys):
    assert main(["--device-id", "bad id!", "--secret", "s", "--broker", "h:1", "--dry-run", str(tmp_path)]) == 2
    assert "device id" in capsys.readouterr().err
    bad = tmp_path / "p.json"
    bad.write_text('[{"name": "x", "mccmnc": ["abc"], "apn": "a"}]')
    assert main(["--device-id", "w1", "--secret", "s", "--broker", "h:1", "--profiles", str(bad),
                 "--dry-run", str(tmp_path / "o")]) == 2
    assert "mccmnc" in capsys.readouterr().err
