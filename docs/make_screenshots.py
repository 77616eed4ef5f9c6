"""Regenerate the README's screenshots: python docs/make_screenshots.py URL [FORM_URL]

URL is a token's callback URL on a running server (create one with a title,
description, details and tags first); FORM_URL, optional, one of a token with a response
form (approval-form.png). Needs Chromium (tests/prepare installs it).
"""

import shutil
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.conftest import CHROMIUM_ARGS as ARGS  # noqa: E402  (one list of flags)

HERE = Path(__file__).parent


def main(url: str, form_url: str | None = None) -> None:
    shots = [("approval-page.png", 900, url), ("approval-page-phone.png", 390, url)]
    if form_url:
        shots.append(("approval-form.png", 700, form_url))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=ARGS)
        for name, width, address in shots:
            page = browser.new_page(viewport={"width": width, "height": 800})
            page.goto(address)
            page.wait_for_timeout(500)
            page.screenshot(path=HERE / name, full_page=True)
            page.close()
        browser.close()


if __name__ == "__main__":
    main(*sys.argv[1:3])
