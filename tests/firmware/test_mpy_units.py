"""Unit tests written in MicroPython (tests/firmware/mpy/ut_*.py; not named test_* so pytest leaves them alone), run by the real interpreter."""
import os

import pytest

from .helpers import MPY_TESTS, run_micropython

SCRIPTS = sorted(MPY_TESTS.glob("ut_*.py"))


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_micropython_unit(script, tmp_path):
    # The long fuzz form (`make fuzz`, PERS_FUZZ_EXAMPLES) needs more than the default 30 s.
    timeout = 1800 if os.environ.get("PERS_FUZZ_EXAMPLES") else 30
    out = run_micropython(script, TMPDIR=str(tmp_path), timeout=timeout)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "FAIL" not in out.stdout, out.stdout
    assert "passed" in out.stdout, out.stdout
