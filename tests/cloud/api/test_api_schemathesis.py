"""Schemathesis against /openapi.json on a running server, logged in: no 5xx,
and every response matches the schema. (A short run here; `make fuzz` runs more.)"""
import os
import subprocess
import sys
from pathlib import Path

import httpx

from cloud.seed import DEMO_OPERATOR

ST = Path(sys.executable).with_name("st")


def test_api_survives_schemathesis(stack_factory, tmp_path):
    stack = stack_factory(api_docs="public")  # the schema is for admins by default
    with httpx.Client(base_url=stack.url) as api:
        r = api.post("/api/auth/login", json={"username": DEMO_OPERATOR[0], "password": DEMO_OPERATOR[1]})
        token, csrf = r.cookies["pers_session"], r.json()["csrf_token"]
    examples = os.environ.get("PERS_SCHEMATHESIS_EXAMPLES", "15")
    proc = subprocess.run(
        [str(ST), "run", f"{stack.url}/openapi.json", "--checks", "not_a_server_error,response_schema_conformance,"
         "status_code_conformance,content_type_conformance", "-n", examples, "--seed", "1",
         "-H", f"Cookie: pers_session={token}", "-H", f"X-CSRF-Token: {csrf}",
         # Logging out mid-run would end the session the rest of the run needs.
         "--exclude-path", "/api/auth/logout",
         "--report", "junit", "--report-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=600, env={**os.environ, "NO_COLOR": "1"})
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
