"""The hooks of tests/ci_skips.py (loaded by conftest.py): under CI=true a skip (test- or module-level) fails the run; outside CI it prints its reason."""

from __future__ import annotations

from pathlib import Path

pytest_plugins = ["pytester"]

TESTS = Path(__file__).resolve().parent
INNER = """
import pytest

def test_runs():
    pass

def test_needs_a_browser():
    pytest.skip("chromium is missing")

@pytest.mark.xfail(reason="known bug")
def test_known_bug():
    assert False
"""


def _run(pytester, monkeypatch, ci: str | None):
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    monkeypatch.setenv("PYTHONPATH", str(TESTS))
    pytester.makepyfile(test_inner=INNER, test_module_skip="import pytest\npytest.importorskip('no_such_module_x')\n")
    return pytester.runpytest_subprocess("-p", "ci_skips", "-p", "no:cacheprovider", "--continue-on-collection-errors")


def test_skips_fail_under_ci(pytester, monkeypatch):
    result = _run(pytester, monkeypatch, "true")
    result.assert_outcomes(passed=1, failed=1, xfailed=1, errors=1)
    result.stdout.fnmatch_lines(["*skipped under CI=true*chromium is missing*", "*no_such_module_x*"])


def test_skips_stay_skips_with_their_reason_outside_ci(pytester, monkeypatch):
    result = _run(pytester, monkeypatch, None)
    result.assert_outcomes(passed=1, skipped=2, xfailed=1)
    result.stdout.fnmatch_lines(["SKIPPED*no_such_module_x*", "SKIPPED*chromium is missing*"])
