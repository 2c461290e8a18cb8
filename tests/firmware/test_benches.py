"""The firmware benchmarks run (quick mode) and write their figures; no figure is asserted."""
import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

BENCHES = {
    "firmware_bench.py": {"heap_peak_bytes", "sos_to_publish_ms_registered", "sos_to_publish_ms_cold",
                          "mpy_total_bytes"},
    "fall_detector_bench.py": {"sensitivity", "specificity", "false_alarms_per_day", "per_label", "test", "tuning"},
    "standby_bench.py": {"standby_days", "battery_mah", "heartbeat_s", "checkin_mah", "sleep_ma", "checkin_counts",
                         "figures"},
}


@pytest.mark.parametrize("script", sorted(BENCHES))
def test_bench_quick_writes_its_figures(script, tmp_path):
    out = tmp_path / "result.json"
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / script), "--quick", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert BENCHES[script] <= set(json.loads(out.read_text()))


def test_recorded_fall_bench_without_a_dataset_says_so_and_writes_nothing(tmp_path):
    out = tmp_path / "recorded.json"
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "fall_recorded_bench.py"), "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "skipped" in proc.stdout
    assert not out.exists()


def _weda_csv(path, rows_ms2):
    # WEDA-FALL's accelerometer layout (its README): seconds and m/s^2, rows delivered in
    # bursts of four or five that share nearly one timestamp.
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["accel_time_list,accel_x_list,accel_y_list,accel_z_list"]
    for i, (x, y, z) in enumerate(rows_ms2):
        lines.append(f"{(i // 5) * 0.1 + (i % 5) * 0.002:.3f},{x:.1f},{y:.1f},{z:.1f}")
    path.write_text("\n".join(lines) + "\n")


def test_recorded_fall_bench_replays_a_folder_in_the_datasets_layout(tmp_path):
    g = 9.8
    rest, side = [(0.0, 0.0, g)] * 100, [(g, 0.0, 0.0)] * 200
    # a landing of several strikes over 400 ms, each held two rows (the resampling to
    # the firmware's 50 Hz grid interpolates between rows)
    landing = [r for r in [(0.0, 0.0, 39.2), (0.0, 0.0, 5.9), (14.7, 0.0, 24.5), (8.8, 0.0, 2.9), (21.6, 0.0, 18.6),
                           (3.9, 2.9, 7.8), (17.6, 2.0, 11.8), (11.8, 0.0, 4.9), (15.7, 0.0, 2.9), (10.8, 0.0, 1.0)]
               for _ in range(2)]
    _weda_csv(tmp_path / "F01" / "U01_R01_accel.csv", rest + [(0.0, 0.0, 4.4)] * 10 + landing + side)
    _weda_csv(tmp_path / "D09" / "U21_R01_accel.csv", rest + [(0.0, 0.0, 2.9)] * 15 + [(0.0, 0.0, 39.2)] * 2 + side)
    _weda_csv(tmp_path / "D04" / "U02_R01_accel.csv", rest + [(0.0, 0.0, 4.4)] * 10 + landing[:3])  # cut short
    out = tmp_path / "recorded.json"
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "fall_recorded_bench.py"), "--weda", str(tmp_path),
                           "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    per = json.loads(out.read_text())["defaults"]["per_code"]
    assert per["F01"] == {"what": "fall forward while walking (slip)", "traces": 1, "detected": 1, "undecided": 0}
    assert (per["D09 elderly"]["traces"], per["D09 elderly"]["detected"]) == (1, 0)
    assert (per["D04"]["detected"], per["D04"]["undecided"]) == (0, 1)  # ended while being judged
