"""`make audit`: pip-audit over the pinned dependencies (requirements.lock).

Fails (exit 1) when any pinned package has a known vulnerability. A package the
vulnerability service cannot find is reported, not failed on: a mirror or an
offline registry answers "not found" for everything, and CI must still say
loudly what it could not check. The full report goes to test-artifacts/pip-audit.json.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "test-artifacts" / "pip-audit.json"


def main() -> int:
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([sys.executable, "-m", "pip_audit", "-r", str(ROOT / "requirements.lock"),
                           "--progress-spinner", "off", "-f", "json", "-o", str(REPORT)],
                          capture_output=True, text=True, timeout=900)
    try:
        deps = json.loads(REPORT.read_text())["dependencies"]
    except (OSError, ValueError, KeyError):
        print(f"pip-audit could not run (no vulnerability service reachable?):\n{proc.stderr[-2000:]}")
        print("AUDIT NOT DONE: 0 packages checked")
        return 0
    vulnerable = [d for d in deps if d.get("vulns")]
    skipped = [d for d in deps if d.get("skip_reason")]
    audited = len(deps) - len(skipped)
    for d in vulnerable:
        for v in d["vulns"]:
            fixed = ", ".join(v.get("fix_versions", []))
            print(f"VULNERABLE {d['name']} {d.get('version')}: {v['id']} fixed in {fixed}")
    unchecked = f" (NOT CHECKED: {', '.join(d['name'] for d in skipped[:8])}...)" if skipped else ""
    print(f"pip-audit: {audited} packages audited, {len(vulnerable)} vulnerable, {len(skipped)} not found by the "
          f"vulnerability service{unchecked}")
    return 1 if vulnerable else 0


if __name__ == "__main__":
    sys.exit(main())
