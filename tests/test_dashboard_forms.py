"""Response forms on the dashboard: an operator approves with the token's form (defaults
filled in, answers checked as on the approval page, rejecting needs none of them), and a
token's page shows the form it asks, the response of its decision and of each named
approver's vote. Server side with the test client; one run in a real Chromium."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pytest
from playwright.sync_api import expect

from app.domain import accounts
from app.domain.timeutil import utcnow

from .browser import PASSWORD, create_operator, serious_violations
from .support import personal_path

CARRIERS = ["dhl", "ups", "fedex", "gls", "dpd", "post"]  # more than 5: a select
FORM = {
    "type": "object",
    "properties": {
        "amount": {"type": "number", "title": "Refund (EUR)", "minimum": 0, "default": 240},
        "count": {"type": "integer", "title": "Items", "minimum": 1, "maximum": 10, "default": 2},
        "reply": {
            "type": "string",
            "title": "Reply to the customer",
            "x-multiline": True,
            "default": "Dear customer,\nyour refund is on its way.",
        },
        "contact": {
            "type": "string",
            "title": "Contact",
            "format": "email",
            "default": "ada@example.com",
        },
        "ticket": {"type": "string", "title": "Ticket", "format": "uri"},
        "ship_on": {
            "type": "string",
            "title": "Ship on",
            "format": "date",
            "default": "2026-12-01",
        },
        "call_at": {
            "type": "string",
            "title": "Call at",
            "format": "date-time",
            "default": "2026-12-01T09:30:00Z",
        },
        "priority": {
            "type": "string",
            "title": "Priority",
            "enum": ["low", "high"],
            "enumNames": ["Low", "High"],
            "default": "high",
        },
        "carrier": {
            "type": "string",
            "title": "Carrier",
            "oneOf": [{"const": c, "title": c.upper()} for c in CARRIERS],
            "default": "dhl",
        },
        "notify": {"type": "boolean", "title": "Notify the customer", "default": True},
        "note": {"type": "string", "title": "Internal note", "description": "Only ops see it."},
    },
    "required": ["amount", "count", "reply", "contact", "priority"],
}
NAMES = list(FORM["properties"])
# What the page posts when nothing is changed: every default (the unchecked box is absent).
DEFAULTS = {
    "amount": "240",
    "count": "2",
    "reply": "Dear customer,\r\nyour refund is on its way.",
    "contact": "ada@example.com",
    "ticket": "",
    "ship_on": "2026-12-01",
    "call_at": "2026-12-01T09:30",
    "priority": "high",
    "carrier": "dhl",
    "notify": "y",
    "note": "",
}
ADA = {"email": "ada@example.com", "name": "Ada Lovelace"}
BOB = {"email": "bob@example.com"}


@pytest.fixture
def alice(app, client, api_key):
    with app.app_context():
        accounts.create_user("alice@example.com", PASSWORD, ["alpha"], utcnow())
    response = client.post("/login", data={"email": "alice@example.com", "password": PASSWORD})
    assert response.status_code == 303
    return client


def field_id(name: str) -> str:
    return f"response_{NAMES.index(name)}"


def answers(**changes) -> dict:
    """The decision form's data: the defaults with ``changes`` (None leaves a field out)."""
    merged = {**DEFAULTS, **changes}
    return {field_id(k): v for k, v in merged.items() if v is not None}


def create(api, **body) -> str:
    return api.create(title="Refund order 1042", form=FORM, **body)["id"]


def detail(client, token_id: str, status: int = 200) -> str:
    response = client.get(f"/dashboard/p/1/tokens/{token_id}")
    assert response.status_code == status, response.get_data(as_text=True)[:2000]
    return response.get_data(as_text=True)


def decide(client, token_id: str, data: dict, approve: bool = True):
    button = {"approve": "Confirm approval"} if approve else {"reject": "Confirm rejection"}
    return client.post(f"/dashboard/p/1/tokens/{token_id}/decide", data={**data, **button})


def output_of(api, token_id: str) -> dict:
    return json.loads(api.retrieve(token_id)["output"])


class Controls(HTMLParser):
    """A page's form controls by id: their attributes, a textarea's text as ``text``, a
    select's chosen option as ``value``."""

    def __init__(self, page: str):
        super().__init__()
        self.found: dict[str, dict] = {}
        self._open: dict | None = None
        self._select: dict | None = None
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("input", "textarea", "select", "button") and "id" in attrs:
            self.found[attrs["id"]] = {"tag": tag, **attrs}
        if tag == "textarea":
            self._open = self.found.get(attrs.get("id"))
            if self._open is not None:
                self._open["text"] = ""
        elif tag == "select":
            self._select = self.found.get(attrs.get("id"))
        elif tag == "option" and self._select is not None and "selected" in attrs:
            self._select["value"] = attrs["value"]

    def handle_data(self, data):
        if self._open is not None:
            self._open["text"] += data

    def handle_endtag(self, tag):
        if tag == "textarea":
            self._open = None
        elif tag == "select":
            self._select = None


def error_next_to(page: str, name: str) -> str:
    """The error shown with one response field (and the field points to it)."""
    control = Controls(page).found.get(field_id(name))
    if control is None:  # radio buttons: their fieldset names the error
        assert f'<fieldset class="field" aria-describedby="{field_id(name)}-error">' in page
    else:
        assert control["aria-invalid"] == "true"
        assert f"{field_id(name)}-error" in control["aria-describedby"]
    found = re.search(
        rf'<p id="{field_id(name)}-error" class="field-error" role="alert">(.*?)</p>', page
    )
    assert found, f"no error next to {name}"
    return found.group(1)


# The approve form ----------------------------------------------------------------------


def test_the_approve_form_asks_every_field_with_its_default(alice, api):
    page = detail(alice, create(api))
    controls = Controls(page).found
    form = page.split("<summary>Approve or reject…</summary>")[1].split("</form>")[0]
    assert '<legend>Answers <span class="legend-note">(needed to approve)</span></legend>' in form
    assert form.index(f'id="{field_id("note")}"') < form.index('id="comment"')  # before it

    def control(name):
        return controls[field_id(name)]

    assert control("amount")["type"] == "number" and control("amount")["value"] == "240"
    assert control("amount")["min"] == "0" and control("amount")["step"] == "any"
    assert control("amount")["required"] is None  # present, without a value
    assert control("count")["step"] == "1" and control("count")["max"] == "10"
    assert control("reply")["tag"] == "textarea"
    assert control("reply")["text"].strip() == "Dear customer,\nyour refund is on its way."
    assert (
        control("contact")["type"] == "email" and control("contact")["value"] == "ada@example.com"
    )
    assert control("ticket")["type"] == "url" and "required" not in control("ticket")
    assert control("ship_on")["type"] == "date" and control("ship_on")["value"] == "2026-12-01"
    assert control("call_at")["type"] == "datetime-local"
    assert control("call_at")["value"] == "2026-12-01T09:30"
    priority = field_id("priority")
    assert controls[f"{priority}-1"]["type"] == "radio" and "checked" in controls[f"{priority}-1"]
    assert (
        controls[f"{priority}-1"]["value"] == "high" and "checked" not in controls[f"{priority}-0"]
    )
    assert "<legend>Priority</legend>" in form and f'for="{priority}-1">High</label>' in form
    assert control("carrier")["tag"] == "select" and control("carrier")["value"] == "dhl"
    assert '<option value="ups">UPS</option>' in form
    assert control("notify")["type"] == "checkbox" and "checked" in control("notify")
    assert control("note")["aria-describedby"] == f"{field_id('note')}-hint"
    assert "Only ops see it." in form
    assert "formnovalidate" in controls["reject"] and "formnovalidate" not in controls["approve"]


def test_a_token_without_a_form_asks_only_for_a_comment(alice, api):
    page = detail(alice, api.create(title="Plain yes or no")["id"])
    assert 'class="response"' not in page and "response_0" not in page
    assert "Response form" not in page


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("amount", "-5", "Enter 0 or more."),
        ("amount", "lots", "Enter a number."),
        ("count", "2.5", "Enter a whole number."),
        ("count", "11", "Enter 10 or less."),
        ("reply", "", "This field is required."),
        ("contact", "", "This field is required."),
        ("contact", "not an email", "Enter an email address."),
        ("ticket", "example.com", "Enter a full URL (https://...)."),
        ("ship_on", "1 December", "Enter a date."),
        ("priority", "urgent", "Choose one of the options."),
        ("carrier", "pigeon", "Choose one of the options."),
    ],
)
def test_an_invalid_answer_shows_the_form_again_and_records_nothing(
    alice, api, name, value, message
):
    token_id = create(api)
    response = decide(alice, token_id, answers(**{name: value, "note": "kept as typed"}))
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert error_next_to(page, name) == message
    assert "Please correct the field marked below." in page
    assert "<details open>" in page  # the form stays open, with what was typed
    assert Controls(page).found[field_id("note")]["value"] == "kept as typed"
    assert api.retrieve(token_id)["status"] == "WAITING"


def test_several_invalid_answers_are_each_named(alice, api):
    token_id = create(api)
    response = decide(alice, token_id, answers(amount="-1", contact=""))
    page = response.get_data(as_text=True)
    assert error_next_to(page, "amount") == "Enter 0 or more."
    assert error_next_to(page, "contact") == "This field is required."
    assert "Please correct the fields marked below." in page
    assert api.retrieve(token_id)["status"] == "WAITING"


def test_a_valid_approval_stores_the_response_in_the_output(alice, api):
    token_id = create(api)
    data = answers(amount="199.5", notify=None, ticket=" https://example.com/t/1042 ", note="ok")
    response = decide(alice, token_id, {**data, "comment": "Partial refund"})
    assert response.status_code == 303
    expected = {
        "amount": 199.5,
        "count": 2,
        "reply": "Dear customer,\nyour refund is on its way.",
        "contact": "ada@example.com",
        "ticket": "https://example.com/t/1042",
        "ship_on": "2026-12-01",
        "call_at": "2026-12-01T09:30:00Z",
        "priority": "high",
        "carrier": "dhl",
        "notify": False,
        "note": "ok",
    }
    assert output_of(api, token_id) == {
        "approved": True,
        "response": expected,
        "comment": "Partial refund",
        "approver": "alice@example.com",
    }
    decision = api.retrieve(token_id)["decision"]
    assert decision["response"] == expected and decision["source"] == "dashboard"


def test_the_defaults_alone_are_a_valid_response(alice, api):
    token_id = create(api)
    assert decide(alice, token_id, answers()).status_code == 303
    response = output_of(api, token_id)["response"]
    assert response["amount"] == 240 and response["notify"] is True
    assert "ticket" not in response and "note" not in response  # optional, left empty


def test_rejecting_needs_none_of_the_answers(alice, api):
    token_id = create(api)
    data = answers(amount="-5", contact="", priority="urgent")
    response = decide(alice, token_id, {**data, "comment": "Not this one"}, approve=False)
    assert response.status_code == 303
    assert output_of(api, token_id) == {
        "approved": False,
        "comment": "Not this one",
        "approver": "alice@example.com",
    }


def test_after_another_form_fails_the_answers_show_their_defaults_again(alice, api):
    token_id = create(api)
    response = alice.post(f"/dashboard/p/1/tokens/{token_id}/complete", data={"output": "{no"})
    assert response.status_code == 422
    controls = Controls(response.get_data(as_text=True)).found
    assert controls[field_id("amount")]["value"] == "240"
    assert "checked" in controls[field_id("notify")]


# The token's page ------------------------------------------------------------------------


def answer_rows(table: str) -> list[tuple[str, str]]:
    rows = re.findall(r'<tr><th scope="row">(.*?)</th><td>(.*?)</td></tr>', table, re.S)
    return [(title, re.sub(r"<[^>]+>", "", cell)) for title, cell in rows]


def test_the_page_shows_the_response_of_an_approval_in_the_forms_order(alice, api):
    token_id = create(api)
    decide(alice, token_id, answers(notify=None, contact="bob@example.com"))
    page = detail(alice, token_id)
    table = page.split('<h2 id="response-title">Response</h2>')[1].split("</table>")[0]
    assert "Answers given with the approval" in table
    assert answer_rows(table) == [
        ("Refund (EUR)", "240"),
        ("Items", "2"),
        ("Reply to the customer", "Dear customer,\nyour refund is on its way."),
        ("Contact", "bob@example.com"),
        ("Ticket", "Not answered"),
        ("Ship on", "2026-12-01"),
        ("Call at", "2026-12-01T09:30:00Z"),
        ("Priority", "High high"),  # the label, and the value stored
        ("Carrier", "DHL dhl"),
        ("Notify the customer", "No"),
        ("Internal note", "Not answered"),
    ]
    assert "Approve or reject…" not in page


def test_a_rejection_has_no_response_to_show(alice, api):
    token_id = create(api)
    decide(alice, token_id, answers(), approve=False)
    assert 'id="response-title"' not in detail(alice, token_id)


def test_the_page_shows_the_form_asked_its_labels_and_its_timeout_output(alice, api):
    token_id = create(
        api,
        approveLabel="Refund now",
        rejectLabel="Keep the money",
        timeoutOutput={"refund": 0},
    )
    page = detail(alice, token_id)
    assert "<dt>Buttons</dt><dd>Refund now / Keep the money</dd>" in page
    asked = page.split('<h2 id="asked-title">Response form</h2>')[1].split("</section>")[0]
    items = re.findall(r"<li>(.*?)</li>", asked, re.S)
    assert len(items) == len(NAMES)
    first = re.sub(r"<[^>]+>", "", items[0])
    assert first == "Refund (EUR) amount: Number; required; at least 0; default: 240"
    assert (
        "<strong>Items</strong> <code>count</code>: Whole number; required; at least 1" in items[1]
    )
    assert "One of: Low, High; required; default: High" in items[7] and "Yes or no" in items[9]
    assert '<span class="hint">Only ops see it.</span>' in items[10]
    schema = asked.split("<summary>The form as JSON Schema</summary>")[1]
    assert "&#34;minimum&#34;: 0," in schema or "&quot;minimum&quot;: 0," in schema
    timeout = page.split('<h2 id="timeout-output-title">Output on time-out</h2>')[1]
    assert "&#34;refund&#34;: 0" in timeout.split("</pre>")[0]


def test_each_approvers_response_shows_beside_their_vote(alice, app, api):
    token = api.create(
        title="Refund order 1042", form=FORM, approvers=[ADA, BOB], requiredApprovals=2
    )
    body = {**answers(amount="120", notify=None), "approve": "Approve"}
    assert alice.post(personal_path(app, token, 1), data=body).status_code == 303
    page = detail(alice, token["id"])
    ada = page.split('id="approver-1"')[1].split('id="approver-2"')[0]
    assert "Approved</span>" in ada and "Answers of Ada Lovelace" in ada
    rows = dict(answer_rows(ada))
    assert rows["Refund (EUR)"] == "120" and rows["Notify the customer"] == "No"
    bob = page.split('id="approver-2"')[1].split("</section>")[0]
    assert "Pending</span>" in bob and "<table" not in bob
    assert 'id="response-title"' not in page  # no decision yet


def test_an_operator_approving_over_the_approvers_gives_their_own_response(alice, app, api):
    token = api.create(title="Refund", form=FORM, approvers=[ADA, BOB], requiredApprovals=2)
    alice.post(personal_path(app, token, 1), data={**answers(amount="120"), "approve": "A"})
    assert decide(alice, token["id"], answers(amount="80")).status_code == 303
    output = output_of(api, token["id"])
    assert output["response"]["amount"] == 80
    assert output["approvals"][0]["response"]["amount"] == 120


# In a real browser -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def operator(live_server, live_key):
    return create_operator(live_server, "live")


def log_in(page, live_server, operator):
    page.goto(live_server.url + "/dashboard/")
    page.get_by_label("Email").fill(operator)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Tokens in live")).to_be_visible()


def test_an_operator_approves_with_the_form_in_a_browser(page, live_server, live_api, operator):
    token = live_api.create(title="Refund in Chromium", form=FORM)["id"]
    log_in(page, live_server, operator)
    page.goto(f"{live_server.url}/dashboard/p/1/tokens/{token}")
    page.get_by_text("Approve or reject…").click()
    expect(page.get_by_label("Refund (EUR)")).to_have_value("240")
    expect(page.get_by_label("Notify the customer")).to_be_checked()
    expect(page.get_by_role("radio", name="High")).to_be_checked()
    page.get_by_label("Refund (EUR)").fill("99.9")
    page.get_by_label("Carrier").select_option("ups")
    page.get_by_label("Notify the customer").uncheck()
    page.get_by_label("Ticket").fill("https://example.com/t/7")
    page.get_by_role("button", name="Confirm approval").click()
    expect(page.locator(".notice-success")).to_contain_text("Approved.")
    response = json.loads(live_api.retrieve(token)["output"])["response"]
    assert response["amount"] == 99.9 and response["carrier"] == "ups"
    assert response["notify"] is False and response["ticket"] == "https://example.com/t/7"
    # A browser posts a textarea's line breaks as CRLF; either way, these two lines.
    assert response["reply"].splitlines() == ["Dear customer,", "your refund is on its way."]
    table = page.get_by_role("table", name="Answers given with the approval")
    expect(table.get_by_role("row", name="Carrier")).to_contain_text("UPS")


@pytest.mark.parametrize("view", ["form_open", "decided"])
def test_the_detail_page_with_a_form_has_no_serious_accessibility_violations(
    browser, live_server, live_api, operator, view
):
    token = live_api.create(
        title="A11y with a form", form=FORM, approveLabel="Refund", timeoutOutput={"n": 0}
    )["id"]
    context = browser.new_context(bypass_csp=True, viewport={"width": 360, "height": 800})
    try:
        page = context.new_page()
        log_in(page, live_server, operator)
        page.goto(f"{live_server.url}/dashboard/p/1/tokens/{token}")
        page.get_by_text("Approve or reject…").click()
        if view == "decided":
            page.get_by_role("button", name="Confirm approval").click()
            expect(page.locator(".notice-success")).to_be_visible()
        page.get_by_text("The form as JSON Schema").click()
        assert serious_violations(page) == []
        overflow = "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        assert page.evaluate(overflow) <= 0  # usable at 360 px: nothing scrolls sideways
    finally:
        context.close()
