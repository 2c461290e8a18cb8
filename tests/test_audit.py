"""`make audit` (scripts/audit.py) with the real pip-audit against a local OSV API on
loopback: it believes a service only once the service has flagged a pin with
published advisories, says plainly when it audited nothing (exit 3, never a pass),
and fails on a vulnerable locked package. No test reaches the real OSV or PyPI."""
from __future__ import annotations

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[1]


def locked(name: str) -> str:
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line.lower().startswith(name + "=="):
            return line.split("==", 1)[1].strip()
    raise AssertionError(f"{name} is not locked")


@pytest.fixture
def osv():
    """A local OSV API: flags the (name, version) pairs in ``flagged``, {} for the rest."""
    flagged: set[tuple[str, str]] = set()
    asked: list[str] = []

    class H(BaseHTTPRequestHandler):
        def do_POST(self):
            q = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            name, version = q["package"]["name"], q["version"]
            asked.append(f"{name}=={version}")
            body = {}
            if (name, version) in flagged:
                body = {"vulns": [{"id": f"TEST-{name}", "summary": "a test advisory", "affected": [
                    {"package": {"name": name, "ecosystem": "PyPI"},
                     "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "999.0"}]}]}]}]}
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *a):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", free_port()), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/v1/query", flagged, asked
    srv.shutdown()
    srv.server_close()


def audit(osv_url: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "audit.py"), "--service", "osv",
                           "--osv-url", osv_url, "--timeout", "5"], capture_output=True, text=True, timeout=600)


def test_nothing_reachable_is_not_a_pass():
    proc = audit(f"http://127.0.0.1:{free_port()}/v1/query")  # nothing listens there
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "AUDIT NOT DONE" in proc.stdout and "not reachable" in proc.stdout
    assert "0 of" in proc.stdout and "No known vulnerability" not in proc.stdout


def test_a_service_that_knows_nothing_is_not_believed(osv):
    url, flagged, asked = osv  # answers "no vulnerability" for everything, the canary too
    proc = audit(url)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "calls jinja2==2.10 clean" in proc.stdout and "No known vulnerability" not in proc.stdout
    assert asked == ["jinja2==2.10"]  # the locked packages were never sent to it


def test_a_vulnerable_locked_package_fails_the_audit_and_a_clean_lock_passes(osv):
    url, flagged, asked = osv
    flagged.add(("jinja2", "2.10"))
    proc = audit(url)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "No known vulnerability in any locked package" in proc.stdout
    flagged.add(("idna", locked("idna")))
    proc = audit(url)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"VULNERABLE idna {locked('idna')}: TEST-idna fixed in 999.0" in proc.stdout
