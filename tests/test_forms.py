"""Response forms: which schemas a create takes, and how the page's answers are judged.

In process; the page's form posts as a browser's would (CSRF off in the test app).
tests/test_forms_browser.py renders and submits the same forms in Chromium.
"""

import json
import re
from datetime import timedelta

import pytest

from app.domain.lifecycle import expire_due
from app.domain.timeutil import utcnow

from .support import ADA, BOB, TOKENS, callback_path, decide_path, error_of, personal_path

FORM = {
    "type": "object",
    "properties": {
        "amount": {
            "type": "number",
            "title": "Refund (EUR)",
            "minimum": 0,
            "maximum": 1000,
            "default": 240,
        },
        "reply": {"type": "string", "title": "Reply", "x-multiline": True, "default": "Dear"},
        "reason": {"type": "string", "enum": ["damaged", "lost"], "enumNames": ["Damaged", "Lost"]},
        "notify": {"type": "boolean", "title": "Notify the customer", "default": True},
        "when": {"type": "string", "format": "date-time", "title": "Refund at"},
        "contact": {"type": "string", "format": "email", "description": "Who to tell"},
        "count": {"type": "integer", "minimum": 1},
        "site": {"type": "string", "format": "uri"},
        "day": {"type": "string", "format": "date"},
        "code": {"type": "string", "minLength": 2, "maxLength": 4},
    },
    "required": ["amount", "reason"],
}


def prop(**spec):
    return {"type": "object", "properties": {"x": spec}}


VALID = [
    prop(type="string"),
    prop(type="string", title="T", description="D", minLength=1, maxLength=10, default="ab"),
    prop(type="string", format="date", default="2026-12-01"),
    prop(type="string", format="date-time", default="2026-12-01T09:00:00Z"),
    prop(type="string", enum=["a", "b"], enumNames=["A", "B"], default="b"),
    prop(type="string", oneOf=[{"const": "a", "title": "A"}, {"const": "b"}]),
    prop(type="string", **{"x-multiline": True}),
    prop(type="number", minimum=-1.5, maximum=2, default=0.5),
    prop(type="integer", default=3),
    prop(type="boolean", default=False),
    {**prop(type="string"), "required": ["x"], "title": "A form", "description": "Why"},
    {"type": "object", "properties": {f"p{i}": {"type": "boolean"} for i in range(20)}},
]

INVALID = [
    ([], "form: Input should be a valid dictionary"),
    ({"type": "array", "properties": {}}, "form.type: 'object' was expected"),
    ({"type": "object"}, "form: 'properties' is a required property"),
    ({"type": "object", "properties": {}}, "form.properties: {} should be non-empty"),
    ({"type": "object", "properties": {"x": {"type": "string"}}, "$ref": "#"}, "form.$ref: is not"),
    (prop(type="array"), "form.properties.x.type: 'array' is not one of"),
    (prop(type="object", properties={}), "form.properties.x.type: 'object' is not one of"),
    (prop(title="no type"), "form.properties.x: 'type' is a required property"),
    (prop(type="string", pattern="^a"), "form.properties.x.pattern: is not allowed here"),
    (prop(type="string", format="phone"), "form.properties.x.format: 'phone' is not one of"),
    (prop(type="string", maxLength=0), "form.properties.x.maxLength: 0 is less than"),
    (prop(type="string", minLength=5, maxLength=2), "form.properties.x.minLength: is more than"),
    (prop(type="string", default=3), "form.properties.x.default: 3 is not of type 'string'"),
    (prop(type="string", maxLength=2, default="abc"), "form.properties.x.default: 'abc' is too"),
    (prop(type="string", format="email", default="no"), "form.properties.x.default: 'no' is not"),
    (prop(type="string", enum=[]), "form.properties.x.enum: [] should be non-empty"),
    (prop(type="string", enum=[1]), "form.properties.x.enum.0: 1 is not of type 'string'"),
    (prop(type="string", enum=["a"], enumNames=["A", "B"]), "form.properties.x.enumNames: must"),
    (prop(type="string", enum=["a"], default="b"), "form.properties.x.default: 'b' is not one of"),
    (prop(type="string", oneOf=[{"const": "a", "x": 1}]), "form.properties.x.oneOf.0.x: is not"),
    (prop(type="number", minimum="0"), "form.properties.x.minimum: '0' is not of type 'number'"),
    (prop(type="number", minimum=5, maximum=1), "form.properties.x.minimum: is more than max"),
    (prop(type="integer", default=1.5), "form.properties.x.default: 1.5 is not of type 'integer'"),
    (prop(type="number", format="email"), "form.properties.x.format: is not allowed here"),
    (prop(type="boolean", default="yes"), "form.properties.x.default: 'yes' is not of type"),
    ({**prop(type="string"), "required": ["y"]}, "form.required.0: 'y' is not a property"),
    ({"type": "object", "properties": {"a b": {"type": "string"}}}, "form.properties.a b: a prop"),
    (
        {"type": "object", "properties": {f"p{i}": {"type": "boolean"} for i in range(21)}},
        "form.properties: {",
    ),
]


@pytest.mark.parametrize("form", VALID, ids=[json.dumps(f)[:60] for f in VALID])
def test_a_form_of_the_restricted_schema_is_taken_and_given_back(api, form):
    token = api.create(form=form)
    assert api.retrieve(token["id"])["form"] == form


@pytest.mark.parametrize(("form", "message"), INVALID, ids=[m for _, m in INVALID])
def test_anything_else_is_a_400_naming_its_path(api, form, message):
    assert error_of(api.post(TOKENS, json={"form": form}), 400).startswith(message)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"approveLabel": ""}, "approveLabel: String should have at least 1 character"),
        ({"rejectLabel": "x" * 41}, "rejectLabel: String should have at most 40 characters"),
        ({"approveLabel": 1}, "approveLabel: Input should be a valid string"),
    ],
)
def test_button_labels_are_1_to_40_characters(api, body, message):
    assert error_of(api.post(TOKENS, json=body), 400) == message


# -- the page ------------------------------------------------------------------------


def page_of(client, token) -> str:
    return client.get(callback_path(token)).get_data(as_text=True)


def test_the_page_renders_a_labelled_input_per_property_with_its_default(api, client):
    token = api.create(form=FORM, approveLabel="Send the refund", rejectLabel="Refuse")
    html = page_of(client, token)
    controls = {
        "Refund (EUR)": r'<input[^>]*id="response_0"[^>]*type="number"',
        "Reply": r'<textarea[^>]*id="response_1"',
        "reason": r'<input[^>]*id="response_2-0"[^>]*type="radio"',
        "Notify the customer": r'<input[^>]*checked[^>]*id="response_3"[^>]*type="checkbox"',
        "Refund at": r'<input[^>]*id="response_4"[^>]*type="datetime-local"',
        "contact": r'<input[^>]*id="response_5"[^>]*type="email"',
        "count": r'<input[^>]*id="response_6"[^>]*type="number"',
        "site": r'<input[^>]*id="response_7"[^>]*type="url"',
        "day": r'<input[^>]*id="response_8"[^>]*type="date"',
        "code": r'<input[^>]*id="response_9"[^>]*maxlength="4"',
    }
    for label, control in controls.items():
        assert f">{label}</" in html, label
        assert re.search(control, html), label
    assert 'value="240"' in html and re.search(r">\s*Dear</textarea>", html)
    assert 'id="response_5-hint" class="hint">Who to tell<' in html
    assert 'value="Send the refund"' in html and 'value="Refuse"' in html


def test_approving_needs_valid_answers_and_records_nothing_until_then(api, client):
    token = api.create(form=FORM)
    answer = client.post(
        decide_path(token),
        data={"approve": "Approve", "response_0": "-5", "response_5": "nope", "response_9": "x"},
    )
    assert answer.status_code == 422
    html = answer.get_data(as_text=True)
    errors = dict(re.findall(r'id="(response_\d+)-error" class="field-error"[^>]*>([^<]+)<', html))
    assert errors == {
        "response_0": "Enter 0 or more.",
        "response_2": "This field is required.",
        "response_5": "Enter an email address.",
        "response_9": "Enter at least 2 characters.",
    }
    assert 'aria-invalid="true"' in html
    assert api.retrieve(token["id"])["status"] == "WAITING"


def test_a_valid_approval_puts_the_answers_in_the_output(api, client):
    token = api.create(form=FORM)
    answer = client.post(
        decide_path(token),
        data={
            "approve": "Approve",
            "response_0": "120.50",
            "response_1": "Dear customer,\r\nsorry.",  # as a browser sends a box
            "response_2": "lost",
            "response_4": "2026-12-01T09:30",
            "response_6": "3",
            "response_8": "2026-12-24",
            "comment": "ok",
            "approver": "Ada",
        },
    )
    assert answer.status_code == 303
    item = api.retrieve(token["id"])
    output = json.loads(item["output"])
    assert output == {
        "approved": True,
        "response": {
            "amount": 120.5,
            "reply": "Dear customer,\nsorry.",
            "reason": "lost",
            "notify": False,  # an unticked box
            "when": "2026-12-01T09:30:00Z",
            "count": 3,
            "day": "2026-12-24",
        },
        "comment": "ok",
        "approver": "Ada",
    }
    assert item["decision"]["response"] == output["response"]


def test_rejecting_needs_no_answers(api, client):
    token = api.create(form=FORM)
    answer = client.post(decide_path(token), data={"reject": "Reject", "response_0": "abc"})
    assert answer.status_code == 303
    assert json.loads(api.retrieve(token["id"])["output"]) == {
        "approved": False,
        "comment": "",
        "approver": None,
    }


def test_each_named_approvers_vote_carries_its_response(api, client, app):
    form = {"type": "object", "properties": {"limit": {"type": "integer", "default": 10}}}
    token = api.create(form=form, approvers=[ADA, BOB], requiredApprovals=2)
    client.post(personal_path(app, token, 1), data={"approve": "Approve", "response_0": "20"})
    client.post(personal_path(app, token, 2), data={"approve": "Approve", "response_0": "30"})
    item = api.retrieve(token["id"])
    output = json.loads(item["output"])
    assert [v["response"] for v in output["approvals"]] == [{"limit": 20}, {"limit": 30}]
    assert output["response"] == {"limit": 30}  # the deciding approval's
    assert [a["response"] for a in item["approvers"]] == [{"limit": 20}, {"limit": 30}]


# -- time-outs -----------------------------------------------------------------------


def test_a_timeout_output_replaces_the_error_and_is_still_an_error(api, app):
    token = api.create(timeout="1h", timeoutOutput={"approved": False, "reason": "no answer"})
    plain = api.create(timeout="1h")
    with app.app_context():
        assert expire_due(now=utcnow() + timedelta(hours=2)) == 2
    item = api.retrieve(token["id"])
    assert (item["status"], item["outputIsError"]) == ("TIMED_OUT", True)
    assert json.loads(item["output"]) == {"approved": False, "reason": "no answer"}
    assert item["timeoutOutput"] == '{"approved":false,"reason":"no answer"}'
    assert json.loads(api.retrieve(plain["id"])["output"])["code"] == "WAITPOINT_TIMEOUT"


def test_a_timeout_output_may_be_null(api, app):
    token = api.create(timeout="1h", timeoutOutput=None)
    with app.app_context():
        expire_due(now=utcnow() + timedelta(hours=2))
    assert api.retrieve(token["id"])["output"] == "null"
