"""Response forms in a real Chromium against a live server: every field type, defaults,
errors next to their fields, a valid answer in the output, without JavaScript, axe."""

import json

import pytest
from playwright.sync_api import expect

from .browser import serious_violations

pytestmark = pytest.mark.slow

FORM = {
    "type": "object",
    "properties": {
        "amount": {"type": "number", "title": "Refund (EUR)", "minimum": 0, "default": 240},
        "reply": {
            "type": "string",
            "title": "Reply to the customer",
            "description": "Edit the draft before approving.",
            "x-multiline": True,
            "default": "Dear customer,\nyour refund is on its way.",
        },
        "reason": {
            "type": "string",
            "title": "Reason",
            "oneOf": [{"const": "damaged", "title": "Arrived damaged"}, {"const": "lost"}],
        },
        "queue": {
            "type": "string",
            "title": "Queue",
            "enum": ["a", "b", "c", "d", "e", "f"],
            "enumNames": ["Alpha", "Bravo", "Charlie", "Delta", "Echo", "Foxtrot"],
            "default": "c",
        },
        "notify": {"type": "boolean", "title": "Tell the customer", "default": True},
        "when": {"type": "string", "format": "date-time", "title": "Pay out at (UTC)"},
        "day": {"type": "string", "format": "date", "title": "Booking day"},
        "contact": {"type": "string", "format": "email", "title": "Contact"},
        "site": {"type": "string", "format": "uri", "title": "Order page"},
        "count": {"type": "integer", "title": "Parcels", "minimum": 1, "default": 1},
    },
    "required": ["amount", "reason"],
}


@pytest.fixture
def browser_context_args(browser_context_args):
    return {**browser_context_args, "bypass_csp": True}  # to inject axe-core


def test_every_field_type_with_its_default_and_a_valid_answer_in_the_output(page, live_api):
    token = live_api.create(title="Refund?", form=FORM, approveLabel="Send the refund")
    page.goto(token["url"])
    expect(page.get_by_label("Refund (EUR)")).to_have_value("240")
    expect(page.get_by_label("Reply to the customer")).to_have_value(
        "Dear customer,\nyour refund is on its way."
    )
    expect(page.get_by_text("Edit the draft before approving.")).to_be_visible()
    expect(page.get_by_role("radio", name="Arrived damaged")).not_to_be_checked()
    expect(page.get_by_label("Queue")).to_have_value("c")  # six choices: a select
    expect(page.get_by_label("Tell the customer")).to_be_checked()
    for label, kind in [
        ("Pay out at (UTC)", "datetime-local"),
        ("Booking day", "date"),
        ("Contact", "email"),
        ("Order page", "url"),
        ("Parcels", "number"),
    ]:
        expect(page.get_by_label(label)).to_have_attribute("type", kind)
    assert serious_violations(page) == []

    page.get_by_label("Refund (EUR)").fill("199.99")
    page.get_by_label("Reply to the customer").fill("Dear customer,\nhere is 199.99 EUR.")
    page.get_by_role("radio", name="Arrived damaged").check()
    page.get_by_label("Queue").select_option("Echo")
    page.get_by_label("Tell the customer").uncheck()
    page.get_by_label("Pay out at (UTC)").fill("2026-12-01T09:30")
    page.get_by_label("Booking day").fill("2026-12-24")
    page.get_by_role("button", name="Send the refund").click()
    expect(page.locator("#card")).to_contain_text("you approved this request")
    output = json.loads(live_api.retrieve(token["id"])["output"])
    assert output["response"] == {
        "amount": 199.99,
        "reply": "Dear customer,\nhere is 199.99 EUR.",
        "reason": "damaged",
        "queue": "e",
        "notify": False,
        "when": "2026-12-01T09:30:00Z",
        "day": "2026-12-24",
        "count": 1,
    }


def test_a_missing_required_answer_is_shown_at_its_field_and_nothing_is_recorded(page, live_api):
    token = live_api.create(form=FORM)
    page.goto(token["url"])
    # The browser asks first (required); a browser that does not must meet the server's check.
    page.evaluate(
        "document.querySelectorAll('[required]').forEach(e => e.removeAttribute('required'))"
    )
    page.get_by_label("Refund (EUR)").fill("")
    page.get_by_label("Contact").fill("not an address")
    page.evaluate("document.getElementById('response_7').type = 'text'")  # past type=email
    page.get_by_role("button", name="Approve").click()
    expect(page.locator("#response_0-error")).to_have_text("This field is required.")
    expect(page.locator("#response_2-error")).to_have_text("This field is required.")
    expect(page.locator("#response_7-error")).to_have_text("Enter an email address.")
    expect(page.get_by_label("Refund (EUR)")).to_have_attribute("aria-invalid", "true")
    assert live_api.retrieve(token["id"])["status"] == "WAITING"
    assert serious_violations(page) == []
    page.get_by_role("button", name="Reject").click()  # rejecting needs no answers
    expect(page.locator("#card")).to_contain_text("you rejected this request")


def test_without_javascript_the_form_is_a_plain_post(browser, live_api):
    form = {"type": "object", "properties": {"limit": {"type": "integer", "default": 5}}}
    token = live_api.create(form=form)
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(token["url"])
        page.get_by_label("limit").fill("7")
        page.get_by_role("button", name="Approve").click()
        expect(page.locator("#card")).to_contain_text("you approved this request")
    finally:
        context.close()
    assert json.loads(live_api.retrieve(token["id"])["output"])["response"] == {"limit": 7}
