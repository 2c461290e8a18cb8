"""Unit tests written in MicroPython (tests/firmware/mpy/ut_*.py; not named test_* so
pytest leaves them alone), run by the real interpreter."""
import os

import pytest

from bench.ports import free_port

from .helpers import MPY_TESTS, run_micropython

SCRIPTS = sorted(MPY_TESTS.glob("ut_*.py"))


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_micropython_unit(script, tmp_path):
    # The long fuzz form (`make fuzz`, PERS_FUZZ_EXAMPLES) needs more than the default 30 s.
    timeout = 1800 if os.environ.get("PERS_FUZZ_EXAMPLES") else 30
    # Servers inside a script listen on ports picked here (the unix port has no
    # getsockname(), so it cannot ask the kernel for a free one itself).
    out = run_micropython(script, TMPDIR=str(tmp_path), timeout=timeout,
                          PERS_TEST_PORTS=",".join(str(free_port()) for _ in range(2)))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "FAIL" not in out.stdout, out.stdout
    assert "passed" in out.stdout, out.stdout
