"""No silent skips in CI (hooks re-exported by conftest.py).

Under CI=true (set by .ci/run) a skipped test or module (a missing browser, an import that failed) is a
failure, so a green run means every test ran. Outside CI a skip stays a skip and its reason is printed.
"""

from __future__ import annotations

import os

import pytest


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def _fail_skip(report) -> None:
    if report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, which needs every test to run: {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    if _in_ci():
        _fail_skip(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    if _in_ci():
        _fail_skip(outcome.get_result())


def pytest_configure(config) -> None:
    if not _in_ci() and "s" not in (config.option.reportchars or ""):
        config.option.reportchars = (config.option.reportchars or "") + "s"  # print every skip's reason
