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
