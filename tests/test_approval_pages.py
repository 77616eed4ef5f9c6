"""Approval pages, server side: GET is safe, CSRF, headers, escaping, decisions."""

import json
import re
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.domain import lifecycle, stored
from app.domain.timeutil import isoformat, utcnow
from app.extensions import db
from app.models import Completion

from .support import TOKENS, Api, callback_path, decide_path, error_of

XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def csrf_from(html):
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)


@pytest.fixture
def csrf_app(app_factory):
    return app_factory(WTF_CSRF_ENABLED=True)


@pytest.fixture
def browser_client(csrf_app):
    return csrf_app.test_client()


@pytest.fixture
def csrf_api(browser_client, api_key):
    return Api(browser_client, api_key)


def test_get_never_changes_state(app, api, client):
    token = api.create(title="Deploy?", timeout="1h")
    for _ in range(3):
        assert client.get(callback_path(token)).status_code == 200
        assert client.head(callback_path(token)).status_code == 200
    assert api.retrieve(token["id"])["status"] == "WAITING"
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Completion)) == 0


def test_a_decision_without_a_csrf_token_is_refused(csrf_api, browser_client):
    token = csrf_api.create()
    browser_client.get(callback_path(token))  # a session exists, but no token is sent
    response = browser_client.post(decide_path(token), data={"approve": "Approve"})
    assert response.status_code == 400
    assert "not recorded" in response.get_data(as_text=True)
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert csrf_api.retrieve(token["id"])["status"] == "WAITING"


def test_a_decision_with_a_foreign_csrf_token_is_refused(csrf_api, csrf_app, browser_client):
    token = csrf_api.create()
    other = csrf_app.test_client()
    stolen = csrf_from(other.get(callback_path(token)).get_data(as_text=True))
    browser_client.get(callback_path(token))
    response = browser_client.post(
        decide_path(token), data={"csrf_token": stolen, "approve": "Approve"}
    )
    assert response.status_code == 400
    assert csrf_api.retrieve(token["id"])["status"] == "WAITING"


def test_approving_records_the_decision_and_redirects_with_303(csrf_api, browser_client):
    token = csrf_api.create(title="Ship it?")
    html = browser_client.get(callback_path(token)).get_data(as_text=True)
    response = browser_client.post(
        decide_path(token),
        data={
            "csrf_token": csrf_from(html),
            "approver": " Ada ",
            "comment": "LGTM",
            "approve": "Approve",
        },
        headers={"User-Agent": "Mozilla/5.0 test"},
        environ_base={"REMOTE_ADDR": "198.51.100.7"},
    )
    assert response.status_code == 303
    assert response.headers["Location"].endswith(callback_path(token))
    done = csrf_api.retrieve(token["id"])
    assert done["status"] == "COMPLETED"
    assert json.loads(done["output"]) == {"approved": True, "comment": "LGTM", "approver": "Ada"}
    decision = done["decision"]
    assert decision["approved"] is True and decision["approver"] == "Ada"
    assert decision["comment"] == "LGTM" and decision["source"] == "page"
    assert decision["ip"] == "198.51.100.7" and decision["userAgent"] == "Mozilla/5.0 test"
    assert decision["decidedAt"] == done["completedAt"]
    page = browser_client.get(callback_path(token)).get_data(as_text=True)
    assert "Thank you: you approved" in page
    assert "Approved by Ada" in page and "<form" not in page.split("<main")[1]


def test_rejecting_without_a_name_stores_null_approver(csrf_api, browser_client):
    token = csrf_api.create()
    html = browser_client.get(callback_path(token)).get_data(as_text=True)
    browser_client.post(
        decide_path(token), data={"csrf_token": csrf_from(html), "reject": "Reject"}
    )
    output = json.loads(csrf_api.retrieve(token["id"])["output"])
    assert output == {"approved": False, "comment": "", "approver": None}
    page = " ".join(browser_client.get(callback_path(token)).get_data(as_text=True).split())
    assert '<p class="outcome-title"> Rejected <span class="outcome-time">at' in page


def test_a_second_decision_is_told_it_was_already_decided(api, client):
    token = api.create()
    client.post(decide_path(token), data={"approve": "Approve", "approver": "First"})
    response = client.post(decide_path(token), data={"reject": "Reject"}, follow_redirects=True)
    page = response.get_data(as_text=True)
    assert "Your response was not recorded" in page
    assert "Approved by First" in page
    assert json.loads(api.retrieve(token["id"])["output"])["approved"] is True


def test_a_click_after_the_deadline_says_the_request_expired(api, client):
    token = api.create(timeout=isoformat(utcnow() + timedelta(milliseconds=50)))
    time.sleep(0.1)  # the page was open; the sweep has not run (no scheduler here)
    response = client.post(decide_path(token), data={"approve": "Approve"}, follow_redirects=True)
    page = " ".join(response.get_data(as_text=True).split())
    assert "Your response was not recorded: this request expired at" in page
    assert "already been decided" not in page
    assert api.retrieve(token["id"])["status"] == "TIMED_OUT"


def test_a_rejection_is_not_announced_like_an_approval(api, client):
    approved, rejected = api.create(), api.create()
    pages = {}
    for token, choice in ((approved, "approve"), (rejected, "reject")):
        response = client.post(decide_path(token), data={choice: "x"}, follow_redirects=True)
        pages[choice] = response.get_data(as_text=True)
    assert 'class="notice notice-success"' in pages["approve"]
    assert 'class="notice notice-success"' not in pages["reject"]
    assert 'class="notice notice-info"' in pages["reject"]
    assert "you rejected this request" in pages["reject"]


@pytest.mark.parametrize(
    ("how", "heading"),
    [("complete", "This request has been decided"), ("time-out", "This request has expired")],
)
def test_an_untitled_closed_request_does_not_ask_for_approval(app, api, client, how, heading):
    token = api.create(timeout="1h")
    if how == "complete":
        api.post(f"{TOKENS}/{token['id']}/complete", json={"data": 1})
    else:
        with app.app_context():
            row = stored.find_token(token["id"])
            lifecycle.time_out_now(row.pk, lifecycle.CompletionRecord(source="dashboard"))
    page = client.get(callback_path(token)).get_data(as_text=True)
    assert f'<h1 id="card-title">{heading}</h1>' in page
    assert "Your approval is requested" not in page


def test_an_unexpected_error_on_the_approval_page_is_an_html_page(app_factory, api, tmp_path):
    token = api.create()
    broken = app_factory(f"sqlite:///{tmp_path}/missing/dir/db.sqlite")
    response = broken.test_client().get(callback_path(token))
    assert response.status_code == 500
    assert response.mimetype == "text/html"
    assert "Something went wrong" in response.get_data(as_text=True)
    assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")


def test_htmx_decisions_return_the_card_fragment(api, client):
    token = api.create(title="Fragment")
    response = client.post(
        decide_path(token), data={"approve": "Approve"}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert html.lstrip().startswith("{#") is False and html.lstrip().startswith("<article")
    assert "Thank you: you approved" in html


def test_the_probe_is_204_while_waiting_then_the_final_card(api, client):
    token = api.create()
    probe = decide_path(token) + "/card"
    assert client.get(probe, headers={"HX-Request": "true"}).status_code == 204
    api.post(f"{TOKENS}/{token['id']}/complete", json={"data": 1})
    response = client.get(probe, headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert response.headers["HX-Retarget"] == "#card"
    assert response.headers["HX-Reswap"] == "outerHTML"
    assert "Completed by an integration" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({}, None, "Choose Approve or Reject."),
        ({"approve": "Approve", "reject": "Reject"}, None, "Choose Approve or Reject."),
        (
            {"approve": "Approve", "approver": "x" * 101},
            "approver",
            "Field cannot be longer than 100 characters.",
        ),
        (
            {"reject": "Reject", "comment": "x" * 2001},
            "comment",
            "Field cannot be longer than 2000 characters.",
        ),
    ],
)
def test_an_invalid_decision_is_shown_and_not_stored(api, client, data, field, message):
    token = api.create()
    response = client.post(decide_path(token), data=data)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    if field is None:
        assert f"<p>{message}</p>" in page  # the form's own error, above the fields
    else:  # next to its field, and tied to it for screen readers
        assert f'<p id="{field}-error" class="field-error" role="alert">{message}</p>' in page
        control = re.search(rf'<(?:input|textarea)[^>]* id="{field}"[^>]*>', page).group(0)
        assert 'aria-invalid="true"' in control
        assert f'aria-describedby="{field}-error"' in control
    assert api.retrieve(token["id"])["status"] == "WAITING"


def test_the_json_callback_still_works_with_csrf_on(csrf_api, browser_client):
    token = csrf_api.create()
    browser_client.get(callback_path(token))
    response = browser_client.post(callback_path(token), json={"approved": True})
    assert response.get_json() == {"success": True, "applied": True, "status": "COMPLETED"}


SECURITY = {
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Robots-Tag": "noindex, nofollow",
}


def assert_secure(response):
    for name, value in SECURITY.items():
        assert response.headers[name] == value, name
    csp = response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert '<meta name="robots" content="noindex' in response.get_data(as_text=True)


def test_every_page_response_has_the_security_headers(api, client):
    token = api.create()
    assert_secure(client.get(callback_path(token)))
    assert_secure(client.get(callback_path(token)[:-2] + "00"))
    decided = client.post(decide_path(token), data={"approve": "Approve"}, follow_redirects=True)
    assert_secure(decided)


def test_a_tampered_url_is_a_friendly_404_revealing_nothing(api, client):
    token = api.create()
    path = callback_path(token)
    tampered = client.get(path[:-4] + "beef")
    unknown = client.get(path.replace(token["id"], "waitpoint_" + "z" * 25))
    assert tampered.status_code == unknown.status_code == 404
    assert tampered.get_data() == unknown.get_data()
    assert "This link is not valid" in tampered.get_data(as_text=True)
    assert (
        client.post(decide_path(token)[:-4] + "beef", data={"approve": "Approve"}).status_code
        == 404
    )
    assert api.retrieve(token["id"])["status"] == "WAITING"


def test_text_from_the_token_is_always_escaped(api, client):
    token = api.create(title=XSS, description=XSS, details={XSS: XSS}, tags=[XSS[:120]])
    client.post(decide_path(token), data={"approve": "Approve", "approver": XSS, "comment": XSS})
    html = client.get(callback_path(token)).get_data(as_text=True)
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html


def test_a_timed_out_token_says_so(app, api, client):
    from datetime import timedelta

    from app.domain import lifecycle
    from app.domain.timeutil import utcnow

    token = api.create(timeout="1m")
    with app.app_context():
        lifecycle.expire_due(utcnow() + timedelta(minutes=2))
    html = client.get(callback_path(token)).get_data(as_text=True)
    assert "Timed out" in html and "expired" in html and "<form" not in html
    response = client.post(decide_path(token), data={"approve": "Approve"}, follow_redirects=True)
    assert "Your response was not recorded" in response.get_data(as_text=True)


# The create fields that feed the page.


def test_title_description_and_details_are_stored_and_returned(api):
    details = {"amount": 42.5, "count": 3, "urgent": True, "order": "A-1"}
    token = api.retrieve(api.create(title="T", description="a\nb", details=details)["id"])
    assert (token["title"], token["description"], token["details"]) == ("T", "a\nb", details)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": "x" * 201}, "title"),
        ({"title": ""}, "title"),
        ({"description": "x" * 10_001}, "description"),
        ({"details": {"nested": {"a": 1}}}, "details"),
        ({"details": {"list": [1]}}, "details"),
        ({"details": {"none": None}}, "details"),
        ({"details": {f"k{i}": i for i in range(51)}}, "details"),
        ({"details": {"": 1}}, "details"),
        ({"details": "text"}, "details"),
    ],
)
def test_bad_page_fields_are_400_naming_the_field(api, body, field):
    assert error_of(api.post(TOKENS, json=body), 400).startswith(f"{field}")


def test_non_finite_numbers_are_not_json(api):
    response = api.post(TOKENS, data='{"details": {"x": NaN}}', content_type="application/json")
    assert error_of(response, 400) == "body: is not valid JSON (NaN is not JSON)"


def test_nul_in_the_approvers_name_is_refused(api, client):
    token = api.create()
    response = client.post(decide_path(token), data={"approve": "Approve", "approver": "\u0000"})
    assert response.status_code == 422
    assert "NUL" in response.get_data(as_text=True)
    assert api.retrieve(token["id"])["status"] == "WAITING"


def test_the_root_is_a_small_page_pointing_to_the_dashboard_the_api_and_healthz(client):
    page = client.get("/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for link in ('href="/dashboard/"', 'href="/api/openapi.json"', 'href="/healthz"'):
        assert link in html
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]


def test_details_show_whole_numbers_without_a_trailing_zero(api, client):
    token = api.create(details={"Amount": 240.0, "Rate": 0.25, "Count": 3})
    html = client.get(callback_path(token)).get_data(as_text=True)
    cells = re.findall(r"<th scope=\"row\">(\w+)</th><td>([^<]*)</td>", html)
    assert cells == [("Amount", "240"), ("Rate", "0.25"), ("Count", "3")]


def test_a_closed_page_tells_the_time_out_once_and_drops_the_forwarding_warning(api, client, app):
    token = api.create(timeout="1h")
    with app.app_context():
        lifecycle.expire_due(now=utcnow() + timedelta(hours=2))
    html = client.get(callback_path(token)).get_data(as_text=True)
    assert html.count("UTC</time>") == 2  # requested, and the time-out (once)
    assert "Anyone with the link can respond" not in html
