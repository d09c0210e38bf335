"""Browser tests need Debian's Chromium and chromedriver. Without them they are skipped,
loudly (a warning and a line at the end of the run); with SCENARIA_REQUIRE_BROWSER=1 (CI
sets it) a missing browser fails them instead."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.support import SCREENSHOTS, Chromium, browser, find_chromium, local_stack

REQUIRED = os.environ.get("SCENARIA_REQUIRE_BROWSER") == "1"
MISSING = (
    "no Chromium found. Install Debian's chromium and chromium-driver (apt-get install "
    "chromium chromium-driver), or point SCENARIA_CHROMIUM and SCENARIA_CHROMEDRIVER at them"
)
_skipped: list[str] = []


@pytest.fixture(scope="session")
def chromium() -> Chromium:
    found = find_chromium()
    if found is None:
        if REQUIRED:
            pytest.fail(f"SCENARIA_REQUIRE_BROWSER=1 and {MISSING}", pytrace=False)
        _skipped.append(MISSING)
        warnings.warn(f"the browser tests are SKIPPED: {MISSING}", stacklevel=1)
        pytest.skip(MISSING)
    return found


@pytest.fixture(scope="module")
def stack(chromium: Chromium) -> Iterator[str]:
    """One local stack per module, on a virtual clock: the browser tests share it."""
    with local_stack() as url:
        yield url


@pytest.fixture(scope="module")
def driver(chromium: Chromium) -> Iterator[Any]:
    with browser(chromium) as opened:
        yield opened


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _skipped:
        terminalreporter.write_sep(
            "!", f"BROWSER TESTS SKIPPED: {_skipped[0]}", red=True, bold=True
        )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """A screenshot of the page as it was when a test failed, beside the others."""
    report = yield
    driver = getattr(item, "funcargs", {}).get("driver")
    if report.when == "call" and report.failed and driver is not None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(SCREENSHOTS / f"FAILED-{item.name}.png"))
        notice = driver.execute_script("return document.querySelector('#notice').textContent")
        report.sections.append(("console notice", notice or "(none)"))
    return report
