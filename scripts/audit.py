"""`make audit`: pip-audit over the pinned dependencies (requirements.lock).

A vulnerability service is believed only after it has proven that it knows
something: each one (OSV first, then PyPI's JSON API) is first asked about a pin
with published advisories (the canary). A service that cannot be reached, or that
calls the canary clean (a registry mirror answers "no vulnerabilities" or "not
found" for everything), audits nothing, and this says so.

Exit status: 0 every locked package checked and none vulnerable; 1 a locked package
has a known vulnerability; 3 NOT AUDITED (no service believable, or some packages
not checked): never a pass. The report goes to test-artifacts/pip-audit.json.

Options: ``--service osv|pypi`` (repeatable; default both), ``--osv-url URL`` (a
self-hosted OSV API), ``--timeout S``.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"
REPORT = ROOT / "test-artifacts" / "pip-audit.json"
# Published advisories: CVE-2019-10906 / GHSA-462w-v97r-4m45 (sandbox escape), among others.
CANARY = "jinja2==2.10"
NOT_AUDITED = 3


def pip_audit(requirements: Path, service: str, args: argparse.Namespace, out: Path) -> tuple[list[dict], str]:
    """(the dependencies pip-audit reported, its complaint if it reported nothing)."""
    cmd = [sys.executable, "-m", "pip_audit", "-r", str(requirements), "--no-deps", "--disable-pip",
           "--progress-spinner", "off", "-s", service, "--timeout", str(args.timeout), "-f", "json", "-o", str(out),
           "--cache-dir", str(out.parent / "cache")]
    if service == "osv" and args.osv_url:
        cmd += ["--osv-url", args.osv_url]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    try:
        return json.loads(out.read_text())["dependencies"], ""
    except (OSError, ValueError, KeyError):
        return [], (proc.stderr.strip().splitlines() or [f"pip-audit exited {proc.returncode}"])[-1][:300]


def believable(service: str, args: argparse.Namespace, work: Path) -> str:
    """'' if the service flags the canary as vulnerable, else why it cannot be believed."""
    canary = work / "canary.txt"
    canary.write_text(CANARY + "\n")
    deps, complaint = pip_audit(canary, service, args, work / f"canary-{service}.json")
    if complaint:
        return f"not reachable ({complaint})"
    if any(d.get("skip_reason") for d in deps):
        return f"does not know {CANARY} ({deps[0]['skip_reason']}): a mirror without vulnerability data?"
    if not any(d.get("vulns") for d in deps):
        return f"calls {CANARY} clean, which has published advisories: a mirror without vulnerability data?"
    return ""


def report(service: str, deps: list[dict]) -> int:
    vulnerable = [d for d in deps if d.get("vulns")]
    skipped = [d for d in deps if d.get("skip_reason")]
    for d in vulnerable:
        for v in d["vulns"]:
            fixed = ", ".join(v.get("fix_versions", []))
            print(f"VULNERABLE {d['name']} {d.get('version')}: {v['id']} fixed in {fixed}")
    checked = len(deps) - len(skipped)
    print(f"pip-audit ({service}): {checked} of {len(deps)} locked packages checked, {len(vulnerable)} vulnerable")
    if vulnerable:
        return 1
    if skipped or not deps:
        names = ", ".join(d["name"] for d in skipped[:10])
        print(f"NOT AUDITED: {len(skipped)} packages could not be checked ({names}...). This is not a pass.")
        return NOT_AUDITED
    print("No known vulnerability in any locked package.")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--service", action="append", choices=("osv", "pypi"))
    ap.add_argument("--osv-url")
    ap.add_argument("--timeout", type=int, default=15)
    args = ap.parse_args(argv)
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    reasons = []
    with tempfile.TemporaryDirectory() as tmp:
        for service in args.service or ["osv", "pypi"]:
            why = believable(service, args, Path(tmp))
            if why:
                reasons.append(f"{service}: {why}")
                continue
            deps, complaint = pip_audit(LOCK, service, args, REPORT)
            if complaint:
                reasons.append(f"{service}: the canary answered, the audit did not ({complaint})")
                continue
            return report(service, deps)
    locked = sum(1 for line in LOCK.read_text().splitlines() if "==" in line)
    print("AUDIT NOT DONE: no vulnerability database could be believed.")
    for r in reasons:
        print(f"  {r}")
    print(f"0 of {locked} locked packages checked. This is not a pass.")
    return NOT_AUDITED


if __name__ == "__main__":
    sys.exit(main())
