"""The dashboard in a real Chromium against a live server process."""

import json
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import expect

from .browser import PASSWORD, create_operator, serious_violations

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def operator(live_server, live_key):
    """An operator of the live key's project ('live'), created with the CLI."""
    return create_operator(live_server, "live")


def log_in(page, live_server, operator, context=None):
    page.goto(live_server.url + "/dashboard/")
    page.get_by_label("Email").fill(operator)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Tokens in live")).to_be_visible()


def rows(page):
    return page.locator("tr[data-token]")


def add_tag(page, tag):
    page.get_by_label("Add a tag").fill(tag)
    page.get_by_role("button", name="Apply filters").click()


def test_filter_by_two_tags_and_share_the_url(page, context, live_server, live_api, operator):
    run = f"run{id(page)}"
    both = live_api.create(tags=[f"customer:{run}", "kind:refund"], title="Both")["id"]
    live_api.create(tags=[f"customer:{run}"], title="Only customer")
    live_api.create(tags=["kind:refund"], title="Only kind")
    log_in(page, live_server, operator)
    page.get_by_label("Add a tag").fill(f"customer:{run[:6]}")  # suggestions as you type
    expect(page.locator(f'#tag-options option[value="customer:{run}"]')).to_have_count(1)
    add_tag(page, f"customer:{run}")
    expect(rows(page)).to_have_count(2)
    add_tag(page, "kind:refund")
    expect(rows(page)).to_have_count(1)
    expect(rows(page).first).to_have_attribute("data-token", both)
    query = parse_qs(urlsplit(page.url).query)
    assert query["tag"] == [f"customer:{run}", "kind:refund"]

    shared = context.new_page()  # same login, a fresh page: the URL alone gives the view
    shared.goto(page.url)
    expect(rows(shared)).to_have_count(1)
    expect(shared.locator(".filter-tags .chip")).to_have_count(2)
    page.go_back()
    expect(rows(page)).to_have_count(2)


def test_a_token_completed_through_the_api_leaves_the_waiting_tab(
    page, live_server, live_api, operator
):
    tag = f"live{id(page)}"
    token = live_api.create(tags=[tag], title="Will be completed")["id"]
    log_in(page, live_server, operator)
    page.goto(f"{page.url.split('?')[0]}?tag={tag}")
    expect(rows(page)).to_have_count(1)
    expect(page.locator('[data-status="COMPLETED"]')).to_have_text("0")
    live_api.complete(token, {"done": True})
    expect(rows(page)).to_have_count(0, timeout=10_000)
    expect(page.locator('[data-status="COMPLETED"]')).to_have_text("1")
    newcomer = live_api.create(tags=[tag], title="Just arrived")["id"]
    expect(page.locator(f'tr[data-token="{newcomer}"]')).to_be_visible(timeout=10_000)
    assert parse_qs(urlsplit(page.url).query)["tag"] == [tag]  # filters kept


def test_approve_from_the_detail_page_shows_in_the_api(page, live_server, live_api, operator):
    token = live_api.create(title="Approve me", tags=["detail"])["id"]
    log_in(page, live_server, operator)
    page.goto(f"{live_server.url}/dashboard/p/1/tokens/{token}")
    page.get_by_text("Approve or reject…").click()
    page.get_by_label("Comment (optional)").fill("fine by ops")
    page.get_by_role("button", name="Confirm approval").click()
    expect(page.locator(".notice-success")).to_contain_text("Approved.")
    decided = live_api.retrieve(token)
    assert decided["decision"]["approver"] == operator
    assert json.loads(decided["output"]) == {
        "approved": True,
        "comment": "fine by ops",
        "approver": operator,
    }


def test_complete_with_invalid_json_shows_the_error(page, live_server, live_api, operator):
    token = live_api.create(title="Custom output")["id"]
    log_in(page, live_server, operator)
    page.goto(f"{live_server.url}/dashboard/p/1/tokens/{token}")
    page.get_by_text("Complete with custom JSON…").click()
    page.get_by_label("Output (JSON)").fill("{not json")
    page.get_by_role("button", name="Confirm completion").click()
    expect(page.get_by_role("alert")).to_contain_text("not valid JSON")
    assert live_api.retrieve(token)["status"] == "WAITING"
    page.get_by_label("Output (JSON)").fill('{"refund": 240}')
    page.get_by_role("button", name="Confirm completion").click()
    expect(page.locator(".notice-success")).to_contain_text("Completed with your output.")
    assert json.loads(live_api.retrieve(token)["output"]) == {"refund": 240}


def test_without_javascript_the_filters_still_work(browser, live_server, live_api, operator):
    tag = "nojs-tag"
    live_api.create(tags=[tag, "other"], title="No JS")
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        log_in(page, live_server, operator)
        add_tag(page, tag)
        page.wait_for_url(lambda url: parse_qs(urlsplit(url).query).get("tag") == [tag])
        expect(rows(page)).to_have_count(1)
        page.get_by_role("link", name="All").click()
        page.wait_for_url(lambda url: parse_qs(urlsplit(url).query).get("status") == ["ALL"])
        expect(rows(page)).to_have_count(1)
    finally:
        context.close()


@pytest.mark.parametrize("view", ["login", "list", "detail", "detail_decided"])
def test_no_serious_accessibility_violations(browser, live_server, live_api, operator, view):
    context = browser.new_context(bypass_csp=True)
    try:
        page = context.new_page()
        if view == "login":
            page.goto(live_server.url + "/login")
        else:
            log_in(page, live_server, operator)
            token = live_api.create(title="A11y", tags=["a11y"], details={"n": 1}, timeout="1h")[
                "id"
            ]
            if view == "detail_decided":
                live_api.complete(token, {"ok": True})
            if view.startswith("detail"):
                page.goto(f"{live_server.url}/dashboard/p/1/tokens/{token}")
        assert serious_violations(page) == []
    finally:
        context.close()
