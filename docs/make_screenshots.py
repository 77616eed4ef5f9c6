"""Regenerate the README's approval-page screenshots: python docs/make_screenshots.py BASE KEY

BASE is a running server (``http://127.0.0.1:5000``) and KEY an API key of it. The script
creates the tokens it shows (waiting, with a response form, decided, expired) and takes
the pictures at 900 px and 390 px. Needs Chromium (tests/prepare installs it).
The dashboard's pictures (docs/dashboard*.png, docs/token-detail*.png) are taken from the
same kind of server, logged in as an operator.
"""

import json
import shutil
import sys
import time
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.conftest import CHROMIUM_ARGS as ARGS  # noqa: E402  (one list of flags)

HERE = Path(__file__).parent
TOKENS = "/api/v1/waitpoints/tokens"

REFUND = {
    "title": "Refund €240 to order #1042?",
    "description": "The customer says the parcel arrived damaged and sent two photos.\n"
    "Refunds over €200 need a second pair of eyes.",
    "details": {"Customer": "Ada Byron", "Order": "#1042", "Amount": "€240.00", "Express": True},
    "tags": ["customer:4711", "kind:refund"],
    "timeout": "4h",
}
FORM = {
    "title": "Send this reply to Ada Byron?",
    "description": "The support agent drafted a reply to ticket #4821 (parcel arrived "
    "damaged). Edit it if needed, then approve to send it.",
    "details": {"Ticket": "#4821", "Customer": "Ada Byron", "Order total": "€240.00"},
    "timeout": "4h",
    "tags": ["support", "agent:drafts"],
    "approveLabel": "Send the reply",
    "rejectLabel": "Don't send",
    "form": {
        "type": "object",
        "properties": {
            "subject": {
                "type": "string",
                "title": "Subject",
                "maxLength": 150,
                "default": "Your order #1042: refund on its way",
            },
            "body": {
                "type": "string",
                "title": "Reply",
                "x-multiline": True,
                "description": "Sent as plain text, signed by the support team.",
                "default": "Dear Ada,\n\nsorry that your parcel arrived damaged. We have "
                "refunded €240.00 to your card; it should appear within 5 working days.\n\n"
                "Kind regards,\nThe support team",
            },
            "refund": {
                "type": "number",
                "title": "Refund (EUR)",
                "minimum": 0,
                "maximum": 240,
                "default": 240,
            },
            "tone": {
                "type": "string",
                "title": "Tone",
                "oneOf": [
                    {"const": "formal", "title": "Formal"},
                    {"const": "friendly", "title": "Friendly"},
                ],
                "default": "friendly",
            },
            "follow_up": {"type": "boolean", "title": "Schedule a follow-up in a week"},
        },
        "required": ["subject", "body", "refund"],
    },
}


def main(base: str, key: str) -> None:
    api = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=10)
    waiting = api.post(TOKENS, json=REFUND).json()
    form = api.post(TOKENS, json=FORM).json()
    decided = api.post(TOKENS, json=REFUND).json()
    expired = api.post(TOKENS, json={**REFUND, "timeout": "1s"}).json()
    shots = [
        ("approval-page.png", 900, waiting["url"]),
        ("approval-page-phone.png", 390, waiting["url"]),
        ("approval-form.png", 700, form["url"]),
        ("approval-decided.png", 390, decided["url"]),
        ("approval-expired.png", 390, expired["url"]),
    ]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=ARGS)
        page = browser.new_page(viewport={"width": 390, "height": 800})
        page.goto(decided["url"])
        page.get_by_label("Your name (optional)").fill("Grace Hopper")
        page.get_by_label("Comment (optional)").fill("Photos show the damage. Refund approved.")
        page.get_by_role("button", name="Approve").click()
        page.wait_for_selector(".outcome")
        page.close()
        time.sleep(max(0.0, 2.0))  # the expired one is past its deadline
        for name, width, url in shots:
            page = browser.new_page(viewport={"width": width, "height": 800})
            page.goto(url)
            page.wait_for_timeout(500)
            page.screenshot(path=HERE / name, full_page=True)
            page.close()
        browser.close()
    print(json.dumps({name: url for name, _, url in shots}, indent=1))


if __name__ == "__main__":
    main(*sys.argv[1:3])
