"""What the browser tests and `make screenshots` share: a real local stack (`python -m
chalicelib.local` in a process of its own, on a virtual clock), Debian's headless Chromium
driven by Selenium through Debian's chromedriver, and the console seen as a user sees it.

No browser is ever downloaded: `find_chromium` looks for the installed one only.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from tests.local_process import KEY, ROOT, started

CLOCK_START = "2026-06-01T10:00:00+00:00"  # daytime: the example's quiet hours do not hold sends
SCREENSHOTS = ROOT / "build" / "screenshots"
CHROMIUM_FLAGS = (  # headless, and nothing that reaches for the network on its own
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
)
T = TypeVar("T")


@dataclass(frozen=True)
class Chromium:
    browser: str
    driver: str


def find_chromium() -> Chromium | None:
    """The installed Chromium and chromedriver (`SCENARIA_CHROMIUM`, `SCENARIA_CHROMEDRIVER`
    override where they are), or None."""
    browser = os.environ.get("SCENARIA_CHROMIUM") or shutil.which("chromium")
    driver = os.environ.get("SCENARIA_CHROMEDRIVER") or shutil.which("chromedriver")
    if browser and driver and os.access(browser, os.X_OK) and os.access(driver, os.X_OK):
        return Chromium(browser, driver)
    return None


@contextmanager
def browser(chromium: Chromium, width: int = 1280, height: int = 800) -> Iterator[Any]:
    """A headless Chromium window of that size, with a profile of its own, closed after."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    with tempfile.TemporaryDirectory(prefix="scenaria-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = chromium.browser
        for flag in (
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
        ):
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service(executable_path=chromium.driver), options=options)
        try:
            set_viewport(driver, width, height)
            yield driver
        finally:
            driver.quit()


def set_viewport(driver: Any, width: int, height: int) -> None:
    """The page's own size (the window's less its frame), a phone's when narrow."""
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600},
    )


@contextmanager
def local_stack(clock_start: str = CLOCK_START) -> Iterator[str]:
    """`make run` on a free port with a virtual clock; yields its URL."""
    with started(SCENARIA_CLOCK="virtual", SCENARIA_CLOCK_START=clock_start) as (url, _):
        yield url


def call(url: str, method: str, path: str, body: Any = None) -> Any:
    """One API call with the local key; the JSON answer (an HTTPError for a 4xx or 5xx)."""
    request = urllib.request.Request(
        url + path,
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"X-Api-Key": KEY, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as answer:
        return json.loads(answer.read() or b"null")


def welcome_id(url: str) -> str:
    """The id of the example scenario the local stack loads."""
    (scenario,) = [
        s for s in call(url, "GET", "/scenarios")["scenarios"] if s["name"] == "Welcome series"
    ]
    return str(scenario["id"])


def sign_up(url: str, profile_id: str, first_name: str) -> None:
    """A new customer: `profile.imported` captures it into the welcome series."""
    fields = {
        "first_name": first_name,
        "email": f"{profile_id}@example.com",
        "phone": "+14155550100",
        "consents": {"email": True, "sms": True},
    }
    call(url, "PUT", f"/profiles/customers/{profile_id}", {"fields": fields})
    call(url, "POST", "/local/drain")


def advance(url: str, duration: str) -> None:
    call(url, "POST", "/local/clock", {"advance": duration})


def wait_for(check: Callable[[], T | None], timeout: float = 30, what: str = "") -> T:
    """Poll `check` until it gives something truthy (the page refreshes on its own clock)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = check()
        except Exception:  # an element replaced while read: look again
            found = None
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout} s for {what or check}")
        time.sleep(0.2)


class Console:
    """The console in a browser, in the words a user would use."""

    def __init__(self, driver: Any, url: str) -> None:
        self.driver, self.url = driver, url

    def open(self) -> None:
        self.driver.get(f"{self.url}/console")

    def sign_in(self, key: str = KEY) -> None:
        field = wait_for(lambda: self.visible("#api-key"), what="the key form")
        field.send_keys(key)
        self.find("#key-form button[type=submit]").click()

    def find(self, selector: str) -> Any:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, selector)

    def find_all(self, selector: str) -> list[Any]:
        from selenium.webdriver.common.by import By

        return list(self.driver.find_elements(By.CSS_SELECTOR, selector))

    def visible(self, selector: str) -> Any:
        found = self.find_all(selector)
        return found[0] if found and found[0].is_displayed() else None

    def open_scenario(self, name: str) -> None:
        from selenium.webdriver.common.by import By

        link = wait_for(
            lambda: self.driver.find_element(By.LINK_TEXT, name), what=f"the scenario {name!r}"
        )
        link.click()
        wait_for(lambda: self.find_all("#graph svg .box"), what="the graph")

    def box(self, node: str) -> Any:
        return self.find(f'#graph .box[data-node="{node}"]')

    def counter(self, node: str, name: str) -> int:
        return int(self.find(f'#graph .box[data-node="{node}"] [data-counter="{name}"]').text)

    def wait_for_counter(self, node: str, name: str, value: int) -> None:
        wait_for(
            lambda: self.counter(node, name) == value,
            what=f"{node}'s {name} counter to show {value}",
        )

    def tab(self, name: str) -> None:
        self.find(f"#tab-{name}").click()

    def set_text(self, selector: str, text: str) -> None:
        self.driver.execute_script(
            "const field = document.querySelector(arguments[0]); field.value = arguments[1];"
            "field.dispatchEvent(new Event('input'));",
            selector,
            text,
        )

    def screenshot(self, name: str, folder: Path = SCREENSHOTS) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.png"
        self.driver.save_screenshot(str(path))
        return path
