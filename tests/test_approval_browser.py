"""Approval pages in a real Chromium against a live server process."""

import json
import re

import pytest
from playwright.sync_api import expect

from .browser import serious_violations

pytestmark = pytest.mark.slow

XSS = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">'


@pytest.fixture
def csp_errors(page):
    errors = []
    page.on("console", lambda m: errors.append(m.text) if "Content Security" in m.text else None)
    return errors


def card(page):
    return page.locator("#card")


def test_approve_with_a_comment_and_a_name(page, live_api, csp_errors):
    token = live_api.create(title="Refund €240?", details={"Order": "A-1"}, timeout="1h")
    page.goto(token["url"])
    expect(page.get_by_role("heading", name="Refund €240?")).to_be_visible()
    page.get_by_label("Your name (optional)").fill("Ada Lovelace")
    page.get_by_label("Comment (optional)").fill("Within policy.\nGo ahead.")
    expect(page.locator("#fineprint")).to_contain_text("Anyone with the link can respond")
    page.get_by_role("button", name="Approve").click()
    expect(card(page)).to_contain_text("Thank you: you approved this request")
    expect(card(page)).to_contain_text("Approved by Ada Lovelace")
    expect(page.locator("#fineprint")).to_be_hidden()  # closed: nothing left to forward
    done = live_api.retrieve(token["id"])
    assert done["status"] == "COMPLETED"
    assert json.loads(done["output"]) == {
        "approved": True,
        "comment": "Within policy.\nGo ahead.",
        "approver": "Ada Lovelace",
    }
    assert done["decision"]["approver"] == "Ada Lovelace"
    assert "HeadlessChrome" in done["decision"]["userAgent"]
    page.reload()  # later visits are read only
    expect(card(page)).to_contain_text("Approved by Ada Lovelace")
    expect(page.get_by_role("button", name="Approve")).to_have_count(0)
    assert csp_errors == []


def test_reject(page, live_api):
    token = live_api.create(title="Delete the staging database?")
    page.goto(token["url"])
    page.get_by_role("button", name="Reject").click()
    expect(card(page)).to_contain_text("you rejected this request")
    assert json.loads(live_api.retrieve(token["id"])["output"]) == {
        "approved": False,
        "comment": "",
        "approver": None,
    }


def test_two_tabs_deciding_at_once_one_wins_the_other_is_told(context, live_api):
    token = live_api.create(title="Two tabs")
    first, second = context.new_page(), context.new_page()
    first.goto(token["url"])
    second.goto(token["url"])
    first.get_by_role("button", name="Approve").click()
    expect(card(first)).to_contain_text("you approved")
    second.get_by_role("button", name="Reject").click()
    expect(card(second)).to_contain_text("Your response was not recorded")
    expect(card(second)).to_contain_text("Approved")
    assert json.loads(live_api.retrieve(token["id"])["output"])["approved"] is True


def test_a_token_that_times_out_while_open_updates_by_itself(page, live_api):
    token = live_api.create(title="Quick one", timeout="3s")
    page.goto(token["url"])
    expect(page.locator(".countdown")).to_contain_text("in ")
    expect(card(page)).to_contain_text("Timed out", timeout=8000)
    expect(page.get_by_role("button", name="Approve")).to_have_count(0)


def test_a_token_completed_through_the_api_while_open_updates_by_itself(page, live_api):
    token = live_api.create(title="Watch me")
    page.goto(token["url"])
    page.get_by_label("Comment (optional)").fill("typing...")
    live_api.complete(token["id"], {"by": "integration"})
    expect(card(page)).to_contain_text("Completed by an integration", timeout=8000)


def test_without_javascript_the_forms_still_decide(browser, live_api):
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        token = live_api.create(title="No JS")
        page.goto(token["url"])
        page.get_by_label("Your name (optional)").fill("Grace")
        page.get_by_role("button", name="Reject").click()
        expect(page.locator("#card")).to_contain_text("you rejected this request")
        expect(page.locator("#card")).to_contain_text("Rejected by Grace")
        assert page.url == token["url"]  # post/redirect/get landed back on the page
        assert live_api.retrieve(token["id"])["decision"]["approved"] is False
    finally:
        context.close()


def test_pressing_enter_in_a_field_decides_nothing(page, live_api):
    token = live_api.create()
    page.goto(token["url"])
    page.get_by_label("Your name (optional)").fill("Enter key")
    page.get_by_label("Your name (optional)").press("Enter")
    page.wait_for_timeout(500)
    assert live_api.retrieve(token["id"])["status"] == "WAITING"


def test_keyboard_only_approval(page, live_api):
    token = live_api.create(title="Keyboard")
    page.goto(token["url"])
    page.get_by_label("Your name (optional)").focus()
    page.keyboard.type("Kay")
    page.keyboard.press("Tab")
    page.keyboard.type("via keyboard")
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Approve")).to_be_focused()
    page.keyboard.press("Enter")
    expect(card(page)).to_contain_text("Approved by Kay")


def test_a_tampered_url_shows_the_404_page(page, live_api):
    token = live_api.create()
    response = page.goto(token["url"][:-6] + "abcdef")
    assert response.status == 404
    expect(page.get_by_role("heading", name="This link is not valid")).to_be_visible()


def test_xss_payloads_render_as_text(page, live_api):
    token = live_api.create(
        title=XSS, description=XSS, details={XSS: XSS}, tags=[XSS[:100]], timeout="1h"
    )
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(token["url"])
    expect(page.get_by_role("heading")).to_have_text(XSS)
    expect(page.locator(".description")).to_have_text(XSS)
    page.get_by_label("Your name (optional)").fill(XSS)
    page.get_by_label("Comment (optional)").fill(XSS)
    page.get_by_role("button", name="Approve").click()
    expect(page.locator(".comment")).to_have_text(XSS)
    page.reload()
    expect(page.locator(".comment")).to_have_text(XSS)
    assert page.evaluate("window.__xss") is None
    assert page.locator("#card img").count() == 0
    assert dialogs == []


def test_it_fits_a_360_px_phone(browser, live_api):
    context = browser.new_context(viewport={"width": 360, "height": 740}, is_mobile=True)
    try:
        page = context.new_page()
        token = live_api.create(
            title="A long title " * 8,
            description="word " * 200,
            details={"a rather long key name": "x" * 300},
            tags=["t" * 128],
        )
        page.goto(token["url"])
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        box = page.get_by_role("button", name="Approve").bounding_box()
        assert box["height"] >= 44 and box["x"] >= 0 and box["x"] + box["width"] <= 360
    finally:
        context.close()


@pytest.mark.parametrize(
    "state", ["waiting", "approved", "rejected", "completed", "timed_out", "not_found"]
)
def test_no_serious_accessibility_violations(browser, live_api, state):
    import time

    context = browser.new_context(bypass_csp=True)  # to inject axe-core
    try:
        page = context.new_page()
        token = live_api.create(
            title="Accessible?",
            description="Check me.",
            tags=["a11y"],
            details={"Amount": 10},
            timeout="2s" if state == "timed_out" else "1h",
        )
        if state == "timed_out":
            time.sleep(2.2)
        page.goto(token["url"] if state != "not_found" else token["url"][:-2] + "00")
        if state in ("approved", "rejected"):
            page.get_by_label("Your name (optional)").fill("Ada")
            page.get_by_label("Comment (optional)").fill("ok")
            page.get_by_role("button", name="Approve" if state == "approved" else "Reject").click()
            expect(card(page)).to_contain_text("Thank you")
        if state == "completed":
            live_api.complete(token["id"], {"done": True})
            page.reload()
        assert serious_violations(page) == []
    finally:
        context.close()


def test_times_read_the_same_in_utc_with_javascript_as_without(page, live_api):
    token = live_api.create(title="When?", timeout="2h")
    page.goto(token["url"])
    requested = page.locator(".meta time").first
    expect(requested).to_have_text(re.compile(r"^\d{1,2} \w{3} \d{4}, \d{2}:\d{2} UTC$"))
    assert requested.get_attribute("datetime") == token_created(live_api, token)


def token_created(live_api, token) -> str:
    return live_api.retrieve(token["id"])["createdAt"]
