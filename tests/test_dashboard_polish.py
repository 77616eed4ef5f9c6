"""What a new user stumbled on in the dashboard, checked in Chromium against a live server:
the filter card, board rows, the project switcher, the phone header, a token's page."""

import json
import re
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from .browser import PASSWORD, create_operator, serious_violations

pytestmark = pytest.mark.slow

PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 900}


@pytest.fixture(scope="module")
def operator(live_server, live_key):
    """An operator of two projects: the live key's ('live', id 1) and another, so that the
    header shows the project switcher."""
    email = create_operator(live_server, "live", "polish@example.com")
    live_server.cli("users", "add-project", "--email", email, "--project", "zz-other")
    return email


@pytest.fixture
def open_page(browser, live_server, operator):
    """``open_page(path, viewport=..., javascript=..., axe=...)``: a logged-in page at
    ``path`` (``axe``: the page lets axe-core's script in, past the CSP)."""
    contexts = []

    def open_(path="/dashboard/p/1/tokens", viewport=DESKTOP, javascript=True, axe=False):
        context = browser.new_context(
            viewport=viewport, java_script_enabled=javascript, bypass_csp=axe
        )
        contexts.append(context)
        page = context.new_page()
        page.goto(live_server.url + "/login")
        page.get_by_label("Email").fill(operator)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("heading", name="Tokens in live")).to_be_visible()
        page.goto(live_server.url + path)
        return page

    yield open_
    for context in contexts:
        context.close()


def query(page) -> str:
    return urlsplit(page.url).query


# The filter card -----------------------------------------------------------------------


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_the_dates_show_only_for_between_dates(open_page, javascript):
    page = open_page(javascript=javascript)
    created = page.get_by_label("Created")
    expect(created).to_have_value("")
    expect(page.get_by_label("From", exact=True)).to_be_hidden()
    created.select_option(label="Between dates…")
    expect(page.get_by_label("From", exact=True)).to_be_visible()
    expect(page.get_by_label("To", exact=True)).to_be_visible()
    expect(page.get_by_role("group", name="Between dates")).to_be_visible()
    created.select_option(label="Last hour")
    expect(page.get_by_label("To", exact=True)).to_be_hidden()


def test_the_filter_labels_stay_on_one_line(open_page):
    page = open_page()
    for label in (
        ".filter-tags legend",
        "label[for=q]",
        "label[for=approver]",
        "label[for=created]",
    ):
        assert page.locator(label).bounding_box()["height"] < 30, label


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_filtering_leaves_no_empty_parameters_and_links_encode_tags_alike(
    open_page, live_api, javascript
):
    tag = f"team a~b:{javascript}"  # a space, ~ and : : encoded three ways before
    live_api.create(tags=[tag, "other"], title="Encoded alike")
    page = open_page(javascript=javascript)
    sent = []
    page.on("request", lambda request: sent.append(urlsplit(request.url).query))
    page.get_by_label("Add a tag").fill(tag)
    page.get_by_role("button", name="Apply filters").click()
    expected = f"status=WAITING&tag=team+a%7Eb%3A{javascript}"
    page.wait_for_url(lambda url: urlsplit(url).query == expected)
    expect(page.locator("tr[data-token]")).to_have_count(1)
    other = page.locator("tr[data-token]").get_by_role("link", name="other", exact=True)
    assert other.get_attribute("href") == f"{urlsplit(page.url).path}?{expected}&tag=other"
    page.get_by_label("Created").select_option(label="Last 24 hours")
    page.get_by_role("button", name="Apply filters").click()
    page.wait_for_url(lambda url: query(page).endswith("&created=24h"))
    assert query(page) == f"{expected}&created=24h"  # the empty fields left out
    empty = [q for q in sent if q.startswith("status=") and re.search(r"=(&|$)", q)]
    assert bool(empty) is not javascript  # without JavaScript the server drops them


# Board rows ----------------------------------------------------------------------------


def test_a_token_about_to_time_out_is_marked(open_page, live_api):
    soon = live_api.create(tags=["due"], title="Soon", timeout="5m")["id"]
    later = live_api.create(tags=["due"], title="Later", timeout="50m")["id"]
    page = open_page("/dashboard/p/1/tokens?tag=due")
    mark = page.locator(f'tr[data-token="{soon}"] .due-mark')
    expect(mark).to_be_visible()
    cell = page.locator(f'tr[data-token="{soon}"] td[data-label="Time left"]')
    expect(cell).to_have_text(re.compile(r"^in 4 min \d+ s\s*Due soon$"))  # read out too
    expect(page.locator(f'tr[data-token="{later}"] .due-mark')).to_have_count(0)
    time_left = page.locator(f'tr[data-token="{later}"] td[data-label="Time left"] time')
    box = time_left.bounding_box()
    assert box["height"] < 30  # "in 49 min 58 s" on one line
    assert "UTC" in time_left.get_attribute("title")


def test_a_long_tag_is_truncated_with_its_full_text_kept(open_page, live_api):
    tag = "requested-by:" + "nightly-provisioning-job-" * 4 + "eu-west-1"
    token = live_api.create(tags=[tag], title="Long tag")["id"]
    page = open_page("/dashboard/p/1/tokens")
    chip = page.locator(f'tr[data-token="{token}"] .chip-link')
    expect(chip).to_have_text(tag)  # the whole text, for screen readers and copy
    expect(chip).to_have_attribute("title", f"Show only tokens tagged {tag}")
    expect(page.get_by_role("link", name=tag)).to_have_count(1)
    box = chip.bounding_box()
    assert box["height"] < 30 and box["width"] <= 16 * 16 + 1  # one line, at most 16rem
    assert chip.evaluate("el => el.scrollWidth > el.clientWidth")  # cut, with an ellipsis
    assert chip.evaluate("el => getComputedStyle(el).textOverflow") == "ellipsis"


# The project switcher and the phone header ---------------------------------------------


def test_the_project_switcher_shows_and_marks_the_current_project(open_page):
    page = open_page()
    switcher = page.locator("details.switcher > summary")
    expect(switcher).to_have_text("Project live")
    switcher.click()
    current = page.get_by_role("link", name="live", exact=True)
    expect(current).to_have_attribute("aria-current", "page")
    assert "✓" in current.evaluate("el => getComputedStyle(el, '::before').content")
    page.get_by_role("heading", name="Tokens in live").click()  # a click elsewhere closes it
    expect(current).to_be_hidden()


def test_the_phone_header_fits_in_two_rows(open_page):
    page = open_page(viewport=PHONE)
    header = page.locator(".site-header").bounding_box()
    assert header["height"] < 120
    tops = [
        page.locator(selector).bounding_box()["y"]
        for selector in (".switcher summary", ".user-email", ".account-nav .link-button")
    ]
    assert max(tops) - min(tops) < 12  # project, email and log out on one row
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_the_filters_fold_on_a_phone_while_none_is_active(open_page, viewport):
    page = open_page(viewport=viewport)
    apply = page.get_by_role("button", name="Apply filters")
    if viewport is PHONE:
        expect(apply).to_be_hidden()
        expect(page.locator(".tabs")).to_be_in_viewport()  # the tokens come first
        page.locator(".filters-panel > summary").click()
    expect(apply).to_be_visible()
    filtered = open_page("/dashboard/p/1/tokens?tag=due", viewport=viewport)
    expect(filtered.get_by_role("button", name="Apply filters")).to_be_visible()
    expect(filtered.locator(".filters-panel > summary")).to_have_text("Filters 1 active")


# A token's page ------------------------------------------------------------------------


def test_a_final_tokens_card_takes_the_full_width(open_page, live_api):
    token = live_api.create(title="Done", tags=["kind:refund"], details={"amount": 240})["id"]
    live_api.complete(token, {"ok": True})
    page = open_page(f"/dashboard/p/1/tokens/{token}")
    grid = page.locator(".detail-grid").bounding_box()
    card = page.locator(".detail-grid > article").bounding_box()
    assert abs(card["width"] - grid["width"]) < 1
    tags = page.locator(".token-tags").bounding_box()
    table = page.locator("table.details").bounding_box()
    assert table["y"] - (tags["y"] + tags["height"]) >= 12  # tags do not touch the table
    expect(page.get_by_text("COMPLETED", exact=True)).to_have_count(0)


def test_the_json_error_gives_line_and_column(open_page, live_api):
    token = live_api.create(title="Custom output")["id"]
    page = open_page(f"/dashboard/p/1/tokens/{token}")
    page.get_by_text("Complete with custom JSON…").click()
    page.get_by_label("Output (JSON)").fill('{\n  "refund": 240\n  "note": "ok"\n}')
    page.get_by_role("button", name="Confirm completion").click()
    expect(page.locator("#output-error")).to_have_text(
        "This is not valid JSON: line 3, column 3 (Expecting ',' delimiter)."
    )
    assert live_api.retrieve(token)["status"] == "WAITING"


def test_withdraw_on_a_phone(open_page, live_api, operator):
    token = live_api.create(title="Withdraw me", tags=["withdraw"], timeout="1h")["id"]
    page = open_page(f"/dashboard/p/1/tokens/{token}", viewport=PHONE, axe=True)
    page.get_by_text("Withdraw…").click()
    page.get_by_label("Reason (optional)").fill("Customer called back")
    page.get_by_role("button", name="Confirm: withdraw").click()
    expect(page.locator(".notice-success")).to_contain_text("Withdrawn.")
    expect(page.locator(".token-status")).to_have_text("Withdrawn")
    expect(page.locator(".withdrawn-reason")).to_have_text("Reason: Customer called back")
    done = live_api.retrieve(token)
    assert done["outputIsError"] is True
    assert json.loads(done["output"])["code"] == "WAITPOINT_CANCELLED"
    assert serious_violations(page) == []


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_no_serious_accessibility_violations(open_page, live_api, viewport):
    live_api.create(tags=["a11y", "x" * 120], title="A11y", timeout="3m")
    page = open_page("/dashboard/p/1/tokens?tag=a11y", viewport=viewport, axe=True)
    page.locator("details.switcher > summary").click()
    page.get_by_label("Created").select_option(label="Between dates…")
    assert serious_violations(page) == []
