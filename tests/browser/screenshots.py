"""`make screenshots`: the console on the example welcome series, as the README shows it.

A local stack on a virtual clock, a few customers signed up over two days (some opened
their welcome e-mail), and the console in headless Chromium at 1280×800 with the node
where profiles wait for their SMS opened; written to docs/console.png.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tests.browser.support import (
    ROOT,
    Console,
    advance,
    browser,
    call,
    find_chromium,
    local_stack,
    sign_up,
    wait_for,
)

OUTPUT = ROOT / "docs" / "console.png"
FIRST_DAY = ("ada", "bob", "cy", "dee", "eve", "fay")
SECOND_DAY = ("gus", "hal", "ivy")


def main() -> int:
    chromium = find_chromium()
    if chromium is None:
        print("make screenshots needs Debian's chromium and chromium-driver", file=sys.stderr)
        return 1
    with local_stack() as url:
        for name in FIRST_DAY:
            sign_up(url, name, name.title())
        for message in call(url, "GET", "/local/sent")["messages"][:4]:  # some open it
            call(
                url, "POST", "/feedback", {"message_id": message["message_id"], "status": "opened"}
            )
        advance(url, "P1D")
        for name in SECOND_DAY:
            sign_up(url, name, name.title())
        with browser(chromium, 1280, 800) as driver:
            console = Console(driver, url)
            console.open()
            console.sign_in()
            console.open_scenario("Welcome series")
            console.wait_for_counter("welcome_email", "entered", len(FIRST_DAY) + len(SECOND_DAY))
            console.box("wait_day").click()
            wait_for(lambda: console.visible("#node-profiles"), what="the profiles at wait_day")
            path = console.screenshot(OUTPUT.stem, Path(OUTPUT.parent))
    print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
