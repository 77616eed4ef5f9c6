"""The operator dashboard, server side: accounts, permissions, filters, actions."""

import json
import re
import time

import pytest

from app.domain import accounts
from app.domain.timeutil import utcnow

from .support import TOKENS, Api

PASSWORD = "correct horse battery staple"
XSS = '<script>alert("x")</script>'


@pytest.fixture
def users(app):
    with app.app_context():
        accounts.create_user("alice@example.com", PASSWORD, ["alpha"], utcnow())
        accounts.create_user("bob@example.com", PASSWORD, ["beta", "gamma"], utcnow())
    return {"alpha": 1, "beta": 2}


def log_in(client, email="alice@example.com", password=PASSWORD):
    return client.post("/login", data={"email": email, "password": password})


@pytest.fixture
def alice(client, users, api_key):
    assert log_in(client).status_code == 303
    return client


def board(client, project_id=1, **params):
    response = client.get(f"/dashboard/p/{project_id}/tokens", query_string=params)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    counts = dict(re.findall(r'data-status="(\w+)">(\d+)<', html))
    return re.findall(r'data-token="([^"]+)"', html), {k: int(v) for k, v in counts.items()}, html


# Accounts ------------------------------------------------------------------------------


def test_users_cli_reads_the_password_from_stdin_never_a_flag(runner):
    def run(*args, stdin=""):
        return runner.invoke(args=["users", *args], input=stdin)

    created = run(
        "create",
        "--email",
        "Op@Example.com",
        "--project",
        "alpha",
        "--project",
        "beta",
        stdin=PASSWORD + "\n",
    )
    assert created.exit_code == 0, created.output
    assert "op@example.com" in created.stdout and PASSWORD not in created.output
    flag = run("create", "--email", "x@example.com", "--project", "a", "--password", PASSWORD)
    assert flag.exit_code == 2
    short = run("create", "--email", "y@example.com", "--project", "a", stdin="short\n")
    assert "at least 10" in short.stderr
    again = run("create", "--email", "op@example.com", "--project", "a", stdin=PASSWORD + "\n")
    assert "already exists" in again.stderr
    assert run("add-project", "--email", "op@example.com", "--project", "gamma").exit_code == 0
    assert "op@example.com\talpha, beta, gamma" in run("list").stdout
    assert run("delete", "--email", "op@example.com").exit_code == 0
    assert run("list").stdout.strip() == "no users"


def test_passwords_are_stored_hashed_with_the_configured_method(app, users):
    with app.app_context():
        user = accounts.find_user("alice@example.com")
        assert PASSWORD not in user.password_hash
        assert user.password_hash.startswith(app.config["WAITPOINT_PASSWORD_HASH"] + "$")


def test_login_sets_a_safe_session_cookie_and_logout_clears_it(client, users):
    response = log_in(client)
    assert response.status_code == 303
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    assert client.get("/dashboard/p/1/tokens").status_code == 200
    assert client.post("/logout").status_code == 303
    assert client.get("/dashboard/p/1/tokens").status_code == 302


def test_the_cookie_is_secure_behind_https(app_factory, users):
    client = app_factory(
        WAITPOINT_PUBLIC_URL="https://approvals.example.com", SESSION_COOKIE_SECURE=True
    ).test_client()
    assert "Secure" in log_in(client).headers["Set-Cookie"]


def test_a_wrong_password_is_refused(client, users):
    response = log_in(client, password="wrong password!")
    assert response.status_code == 401
    assert "Wrong email or password." in response.get_data(as_text=True)
    assert log_in(client, email="nobody@example.com").status_code == 401


def test_failed_logins_are_rate_limited_per_account_and_address(client, users):
    for _ in range(accounts.MAX_FAILURES_PER_ACCOUNT_AND_IP):
        assert log_in(client, password="wrong password!").status_code == 401
    throttled = log_in(client)  # even the right password waits now, from this address
    assert throttled.status_code == 429
    assert "Too many failed logins" in throttled.get_data(as_text=True)
    assert int(throttled.headers["Retry-After"]) > 0
    assert log_in(client, email="bob@example.com").status_code == 303  # other accounts work


def test_failed_logins_are_rate_limited_per_ip(client, users, app):
    from app.extensions import db
    from app.models import LoginThrottle

    for _ in range(3):  # counted per IP as well as per account
        log_in(client, email="nobody@example.com", password="wrong password!")
    with app.app_context():
        row = db.session.get(LoginThrottle, "ip:127.0.0.1")
        assert row.failures == 3
        row.failures = accounts.MAX_FAILURES_PER_IP - 1  # as if many accounts had been tried
        db.session.commit()
    assert log_in(client, email="nobody@example.com").status_code == 401
    assert log_in(client).status_code == 429  # the right password, from that IP, waits


def test_login_redirects_only_to_local_paths(client, users):
    response = client.post(
        "/login?next=//evil.example/x", data={"email": "alice@example.com", "password": PASSWORD}
    )
    assert response.headers["Location"] == "/dashboard/"
    client.post("/logout")
    response = client.post(
        "/login?next=/dashboard/p/1/tokens%3Fstatus%3DALL",
        data={"email": "alice@example.com", "password": PASSWORD},
    )
    assert response.headers["Location"] == "/dashboard/p/1/tokens?status=ALL"


def test_login_needs_its_csrf_token(app_factory, users):
    client = app_factory(WTF_CSRF_ENABLED=True).test_client()
    assert log_in(client).status_code == 400
    html = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)
    response = client.post(
        "/login", data={"csrf_token": token, "email": "alice@example.com", "password": PASSWORD}
    )
    assert response.status_code == 303


# Permissions ---------------------------------------------------------------------------

PAGES = [
    ("get", "/dashboard/p/{p}/tokens"),
    ("get", "/dashboard/p/{p}/tags?tag=a"),
    ("get", "/dashboard/p/{p}/tokens/{t}"),
    ("post", "/dashboard/p/{p}/tokens/{t}/decide"),
    ("post", "/dashboard/p/{p}/tokens/{t}/complete"),
    ("post", "/dashboard/p/{p}/tokens/{t}/time-out"),
    ("post", "/dashboard/p/{p}/tokens/{t}/withdraw"),
]


@pytest.fixture
def beta_token(client, users, other_key):
    return Api(client, other_key).create(tags=["secret"])["id"]


@pytest.mark.parametrize(("method", "path"), PAGES)
def test_anonymous_users_are_sent_to_login(client, beta_token, method, path):
    response = getattr(client, method)(path.format(p=2, t=beta_token), data={"approve": "1"})
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


@pytest.mark.parametrize(("method", "path"), PAGES)
def test_a_user_of_project_a_gets_404_on_project_b(alice, beta_token, other_key, method, path):
    data = {"approve": "1", "output": "{}", "submit": "1"}
    response = getattr(alice, method)(path.format(p=2, t=beta_token), data=data)
    assert response.status_code == 404
    assert "Not found" in response.get_data(as_text=True)
    assert Api(alice, other_key).retrieve(beta_token)["status"] == "WAITING"


@pytest.mark.parametrize(("method", "path"), PAGES[2:])
def test_a_token_of_project_b_is_404_under_project_a_too(alice, beta_token, method, path):
    response = getattr(alice, method)(path.format(p=1, t=beta_token), data={"approve": "1"})
    assert response.status_code == 404


@pytest.mark.parametrize(("method", "path"), PAGES[3:])
def test_actions_without_csrf_are_refused(app_factory, users, api_key, method, path):
    client = app_factory(WTF_CSRF_ENABLED=True).test_client()
    html = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)
    client.post(
        "/login", data={"csrf_token": token, "email": "alice@example.com", "password": PASSWORD}
    )
    api = Api(client, api_key)
    made = api.create()["id"]
    response = client.post(path.format(p=1, t=made), data={"approve": "1", "output": "{}"})
    assert response.status_code == 400
    assert api.retrieve(made)["status"] == "WAITING"


# The board -----------------------------------------------------------------------------


def test_two_tags_narrow_to_tokens_having_both(alice, api):
    both = api.create(tags=["customer:42", "kind:refund"])["id"]
    api.create(tags=["customer:42"])
    api.create(tags=["kind:refund"])
    newest_both = api.create(tags=["kind:refund", "x", "customer:42"])["id"]
    ids, counts, _ = board(alice, tag=["customer:42", "kind:refund"])
    assert ids == [newest_both, both]
    assert counts == {"WAITING": 2, "COMPLETED": 0, "TIMED_OUT": 0, "ALL": 2}


def test_status_tabs_and_counts(alice, api):
    waiting = api.create()["id"]
    done = api.create()["id"]
    api.post(f"{TOKENS}/{done}/complete", json={"data": 1})
    ids, counts, _ = board(alice)
    assert ids == [waiting]
    assert counts == {"WAITING": 1, "COMPLETED": 1, "TIMED_OUT": 0, "ALL": 2}
    assert board(alice, status="COMPLETED")[0] == [done]
    assert board(alice, status="ALL")[0] == [done, waiting]


def test_counts_move_overdue_tokens_to_timed_out_before_the_sweep(alice, api):
    api.create(tags=["customer:42"], timeout="1s")
    api.create(tags=["customer:42"], timeout="1h")
    done = api.create(tags=["customer:42"])["id"]
    api.post(f"{TOKENS}/{done}/complete", json={"data": 1})
    api.create(tags=["other"], timeout="1s")
    time.sleep(1.2)  # overdue, still stored WAITING: no scheduler runs in this app
    expected = {"WAITING": 1, "COMPLETED": 1, "TIMED_OUT": 1, "ALL": 3}
    assert board(alice, tag="customer:42")[1] == expected
    assert board(alice)[1] == {"WAITING": 1, "COMPLETED": 1, "TIMED_OUT": 2, "ALL": 4}
    assert len(board(alice, tag="customer:42", status="TIMED_OUT")[0]) == 1


def test_search_by_id_prefix_or_idempotency_key(alice, api):
    keyed = api.create(idempotencyKey="order-77")["id"]
    other = api.create()["id"]
    assert board(alice, q="order-77")[0] == [keyed]
    assert board(alice, q=other)[0] == [other]
    assert board(alice, q=other.removeprefix("waitpoint_")[:8])[0] == [other]
    assert board(alice, q="nothing-like-it")[0] == []


def test_created_within_and_bad_dates(alice, api, app):
    recent = api.create()["id"]
    assert board(alice, created="1h")[0] == [recent]
    assert board(alice, created="custom", **{"from": "2000-01-01", "to": "2000-01-02"})[0] == []
    _, _, html = board(alice, created="custom", **{"from": "yesterday"})
    assert "From: use a date like" in html


def test_pages_walk_older_and_newer(alice, api):
    made = [api.create()["id"] for _ in range(30)][::-1]
    first_ids, _, html = board(alice)
    assert first_ids == made[:25]
    older = re.search(r'href="([^"]+)" rel="next"', html).group(1).replace("&amp;", "&")
    second = alice.get(older).get_data(as_text=True)
    assert re.findall(r'data-token="([^"]+)"', second) == made[25:]
    newer = re.search(r'href="([^"]+)" rel="prev"', second).group(1).replace("&amp;", "&")
    assert re.findall(r'data-token="([^"]+)"', alice.get(newer).get_data(as_text=True)) == made[:25]


def test_the_board_fragment_for_htmx(alice, api):
    api.create()
    response = alice.get(
        "/dashboard/p/1/tokens", headers={"HX-Request": "true", "HX-Target": "board"}
    )
    html = response.get_data(as_text=True)
    assert html.lstrip().startswith('<section id="board"') or 'id="board"' in html[:300]
    assert "<form" not in html


def test_tag_suggestions_by_prefix(alice, api):
    api.create(tags=["customer:42", "customer:7", "kind:refund"])
    html = alice.get("/dashboard/p/1/tags?tag=cust").get_data(as_text=True)
    assert re.findall(r'value="([^"]+)"', html) == ["customer:42", "customer:7"]


def test_xss_renders_as_text_in_list_and_detail(alice, api):
    token = api.create(title=XSS, tags=[XSS], description=XSS, details={XSS: XSS})["id"]
    api.post(f"{TOKENS}/{token}/complete", json={"data": {XSS: XSS}})
    for html in (
        board(alice, status="ALL")[2],
        alice.get(f"/dashboard/p/1/tokens/{token}").get_data(as_text=True),
    ):
        assert "<script>alert" not in html
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html


# Actions -------------------------------------------------------------------------------


def test_approve_from_the_detail_page(alice, api):
    token = api.create()["id"]
    response = alice.post(
        f"/dashboard/p/1/tokens/{token}/decide",
        data={"approve": "Confirm approval", "comment": "ok by ops"},
    )
    assert response.status_code == 303
    done = api.retrieve(token)
    assert json.loads(done["output"]) == {
        "approved": True,
        "comment": "ok by ops",
        "approver": "alice@example.com",
    }
    assert done["decision"]["source"] == "dashboard"
    page = alice.get(response.headers["Location"]).get_data(as_text=True)
    assert "Approved." in page and "alice@example.com" in page and "Confirm approval" not in page


def test_complete_with_custom_json_and_invalid_json(alice, api):
    token = api.create()["id"]
    bad = alice.post(f"/dashboard/p/1/tokens/{token}/complete", data={"output": "{oops"})
    assert bad.status_code == 422
    assert "not valid JSON: line 1, column 2 (Expecting property name" in bad.get_data(as_text=True)
    assert api.retrieve(token)["status"] == "WAITING"
    good = alice.post(f"/dashboard/p/1/tokens/{token}/complete", data={"output": '{"refund": 240}'})
    assert good.status_code == 303
    assert json.loads(api.retrieve(token)["output"]) == {"refund": 240}


def test_time_out_now_is_recorded_with_who(alice, api, app):
    token = api.create(timeout="1h")["id"]
    assert alice.post(f"/dashboard/p/1/tokens/{token}/time-out").status_code == 303
    done = api.retrieve(token)
    assert done["status"] == "TIMED_OUT" and done["outputIsError"] is True
    from app.domain import stored

    with app.app_context():
        record = stored.find_token(token).completion
        assert (record.source, record.actor) == ("dashboard", "alice@example.com")
    assert board(alice, status="TIMED_OUT")[0] == [token]


def test_an_action_on_a_decided_token_changes_nothing(alice, api):
    token = api.create()["id"]
    api.post(f"{TOKENS}/{token}/complete", json={"data": "first"})
    response = alice.post(
        f"/dashboard/p/1/tokens/{token}/decide", data={"reject": "1"}, follow_redirects=True
    )
    assert "Nothing changed" in response.get_data(as_text=True)
    assert json.loads(api.retrieve(token)["output"]) == "first"


def test_odd_filter_values_are_reported_not_500(alice, api):
    api.create(tags=["a"])
    for params in (
        {"created": "custom", "to": "9999-12-31"},
        {"created": "custom", "from": "0001-01-01"},
        {"tag": [f"t{i}" for i in range(12)]},
        {"after": "dMKy"},
    ):
        response = alice.get("/dashboard/p/1/tokens", query_string=params)
        assert response.status_code == 200, params


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/dashboard/p/1/tokens", {"tag": "nul\u0000"}),
        ("/dashboard/p/1/tokens", {"q": "\u0000"}),
        ("/dashboard/p/1/tags", {"tag": "\u0000"}),
    ],
)
def test_a_nul_in_a_query_parameter_is_400_naming_it(alice, path, params):
    response = alice.get(path, query_string=params)
    assert response.status_code == 400
    assert f"{next(iter(params))}: must not contain NUL characters" in response.get_data(
        as_text=True
    )


@pytest.mark.parametrize("project_id", ["0", "2147483648", "99999999999999999999", "-1"])
@pytest.mark.parametrize("view", ["tokens", "tags", "tokens/waitpoint_abc"])
def test_a_project_id_out_of_range_is_404(alice, project_id, view):
    assert alice.get(f"/dashboard/p/{project_id}/{view}").status_code == 404
    assert alice.get("/dashboard/p/1/tokens/waitpoint_%00").status_code == 404


@pytest.mark.parametrize(
    "target",
    [
        "/%5Cevil.example",
        "/%5C%5Cevil.example",
        "//evil.example",
        "https%3A//evil.example/",
        "/%09evil",
    ],
)
def test_no_open_redirect_after_login(client, users, target):
    response = client.post(
        f"/login?next={target}", data={"email": "alice@example.com", "password": PASSWORD}
    )
    assert response.headers["Location"] == "/dashboard/"


def test_a_deleted_users_cookie_does_not_open_a_new_users_account(app, client, users):
    log_in(client, email="bob@example.com")  # bob is the newest user: the highest id
    assert client.get("/dashboard/p/2/tokens").status_code == 200
    with app.app_context():
        bob_id = accounts.find_user("bob@example.com").id
        accounts.delete_user(accounts.find_user("bob@example.com"))
        eve = accounts.create_user("eve@example.com", PASSWORD, ["beta"], utcnow())
        same_id = eve.id == bob_id
    response = client.get("/dashboard/p/2/tokens")
    assert response.status_code == 302  # back to the login page, whoever has the id now
    assert same_id or response.status_code == 302


def test_nul_in_an_action_comment_is_refused(alice, api):
    token = api.create()["id"]
    response = alice.post(
        f"/dashboard/p/1/tokens/{token}/decide", data={"approve": "1", "comment": "a\u0000b"}
    )
    assert response.status_code == 422
    assert api.retrieve(token)["status"] == "WAITING"


def test_an_operators_invalid_comment_is_shown_next_to_the_field(alice, api):
    token = api.create()["id"]
    response = alice.post(
        f"/dashboard/p/1/tokens/{token}/decide", data={"approve": "1", "comment": "x" * 2001}
    )
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    error = "Field cannot be longer than 2000 characters."
    assert f'<p id="comment-error" class="field-error" role="alert">{error}</p>' in page
    assert 'aria-describedby="comment-hint comment-error"' in page
    assert api.retrieve(token)["status"] == "WAITING"


def test_the_json_error_names_line_and_column_of_a_multi_line_output(alice, api):
    token = api.create()["id"]
    output = '{\r\n  "refund": 240,\r\n  "note": "ok",\r\n}'  # as a browser sends a textarea
    page = alice.post(f"/dashboard/p/1/tokens/{token}/complete", data={"output": output})
    assert page.status_code == 422
    assert "line 4, column 1 (Expecting property name" in page.get_data(as_text=True)
    nan = alice.post(f"/dashboard/p/1/tokens/{token}/complete", data={"output": "[NaN]"})
    assert "This is not valid JSON (NaN is not JSON)." in nan.get_data(as_text=True)


# Withdraw ------------------------------------------------------------------------------


def stored_completion(app, token_id):
    from app.domain import stored

    with app.app_context():
        return stored.find_token(token_id).completion


def test_withdraw_is_the_apis_cancel_recorded_with_the_operator(alice, api, app):
    token = api.create(tags=["kind:refund"])["id"]
    response = alice.post(
        f"/dashboard/p/1/tokens/{token}/withdraw", data={"reason": "  Customer called back  "}
    )
    assert response.status_code == 303
    done = api.retrieve(token)
    assert done["status"] == "COMPLETED" and done["outputIsError"] is True
    assert json.loads(done["output"]) == {
        "code": "WAITPOINT_CANCELLED",
        "message": "Withdrawn: Customer called back",
    }
    record = stored_completion(app, token)
    assert (record.source, record.actor, record.comment) == (
        "cancel",
        "alice@example.com",
        "Customer called back",
    )
    page = alice.get(response.headers["Location"]).get_data(as_text=True)
    assert "Withdrawn. The integration gets the WAITPOINT_CANCELLED error." in page
    assert '<span class="badge badge-withdrawn">Withdrawn</span>' in page
    assert "<strong>Reason:</strong> Customer called back" in page
    assert "by alice@example.com: “Customer called back”" in page  # the timeline
    assert "Withdrawn on the dashboard" in page and "Confirm: withdraw" not in page
    assert 'class="badge badge-withdrawn">Withdrawn<' in board(alice, status="COMPLETED")[2]


def test_withdraw_without_a_reason(alice, api, app):
    token = api.create()["id"]
    assert alice.post(f"/dashboard/p/1/tokens/{token}/withdraw", data={}).status_code == 303
    assert json.loads(api.retrieve(token)["output"])["message"] == "The request was withdrawn"
    assert stored_completion(app, token).comment is None
    page = alice.get(f"/dashboard/p/1/tokens/{token}").get_data(as_text=True)
    assert "Withdrawn" in page and "Reason:" not in page


def test_a_token_withdrawn_through_the_api_says_so(alice, api):
    token = api.create()["id"]
    api.post(f"{TOKENS}/{token}/cancel", json={"reason": "Superseded"})
    page = alice.get(f"/dashboard/p/1/tokens/{token}").get_data(as_text=True)
    assert "by an integration (API key): “Superseded”" in page
    assert "Withdrawn through the API (cancel)" in page


@pytest.mark.parametrize(
    ("reason", "error"),
    [
        ("x" * 2001, "Field cannot be longer than 2000 characters."),
        ("a\u0000b", "Must not contain NUL characters."),
    ],
)
def test_an_invalid_reason_is_shown_at_its_field_and_nothing_changes(alice, api, reason, error):
    token = api.create()["id"]
    response = alice.post(f"/dashboard/p/1/tokens/{token}/withdraw", data={"reason": reason})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert f'<p id="reason-error" class="field-error" role="alert">{error}</p>' in page
    assert 'aria-describedby="reason-hint reason-error"' in page
    assert api.retrieve(token)["status"] == "WAITING"


def test_withdrawing_a_decided_token_changes_nothing(alice, api):
    token = api.create()["id"]
    api.post(f"{TOKENS}/{token}/complete", json={"data": "first"})
    response = alice.post(f"/dashboard/p/1/tokens/{token}/withdraw", follow_redirects=True)
    assert "Nothing changed" in response.get_data(as_text=True)
    assert json.loads(api.retrieve(token)["output"]) == "first"


# Polish: what a new user stumbled on -----------------------------------------------------


def links(html: str) -> list[str]:
    return [h.replace("&amp;", "&") for h in re.findall(r'href="([^"]*\?[^"]*)"', html)]


def test_board_links_carry_no_empty_parameters_and_encode_as_a_form_does(alice, api):
    api.create(tags=["customer:42", "team a~b"])
    html = board(alice, tag="customer:42", created="1h")[2]
    hrefs = links(html)
    assert hrefs and not [h for h in hrefs if re.search(r"=(&|$)", h)]
    assert "/dashboard/p/1/tokens?status=ALL&tag=customer%3A42&created=1h" in hrefs
    assert "/dashboard/p/1/tokens?status=WAITING&tag=customer%3A42&tag=team+a%7Eb&created=1h" in (
        hrefs
    )  # the chip of the row's other tag: as a browser encodes the form
    dated = board(alice, created="custom", **{"from": "2026-01-01"})[2]
    assert "/dashboard/p/1/tokens?status=ALL&created=custom&from=2026-01-01" in links(dated)


def test_a_form_sent_without_javascript_is_redirected_without_its_empty_fields(alice):
    sent = "status=WAITING&tag=&q=&approver=&created=&from=&to="
    response = alice.get(f"/dashboard/p/1/tokens?{sent}")
    assert response.status_code == 302
    assert response.headers["Location"] == "/dashboard/p/1/tokens?status=WAITING"
    dates = "status=ALL&tag=a+b&tag=&q=&created=7d&from=2026-01-01&to=2026-02-01"
    response = alice.get(f"/dashboard/p/1/tokens?{dates}")
    assert response.headers["Location"] == "/dashboard/p/1/tokens?status=ALL&tag=a+b&created=7d"
    assert alice.get("/dashboard/p/1/tokens?tag=&q=").headers["Location"] == "/dashboard/p/1/tokens"


def test_a_token_about_to_time_out_is_marked(alice, api):
    soon = api.create(timeout="9m")["id"]
    later = api.create(timeout="11m")["id"]
    html = board(alice)[2]
    assert re.search(rf'<tr data-token="{soon}" class="due-soon">', html)
    assert f'<tr data-token="{later}">' in html
    assert html.count('<strong class="due-mark">Due soon</strong>') == 1


def test_board_times_are_relative_with_the_exact_utc_time_in_their_title(alice, api):
    api.create(timeout="2h")
    html = board(alice)[2]
    utc = r"\d{1,2} \w{3} \d{4}, \d\d:\d\d UTC"
    assert re.search(rf'<time datetime="[^"]+Z" title="{utc}">just now</time>', html)
    assert re.search(rf'title="Times out {utc}">in 1 h 59 min</time>', html)


def test_a_final_token_has_no_actions_and_its_status_once(alice, api):
    token = api.create()["id"]
    api.post(f"{TOKENS}/{token}/complete", json={"data": {"ok": True}})
    page = alice.get(f"/dashboard/p/1/tokens/{token}").get_data(as_text=True)
    assert 'class="detail-grid detail-grid-final"' in page and "actions-card" not in page
    assert "COMPLETED" not in page and page.count(">Completed<") == 1


def test_the_project_switcher_names_and_marks_the_current_project(client, users):
    log_in(client, email="bob@example.com")
    html = client.get("/dashboard/p/3/tokens").get_data(as_text=True)
    summary = re.search(r"<summary>(.*?)</summary>", html).group(1)
    assert "Project" in summary and "gamma" in summary
    menu = re.search(r'<ul aria-label="Projects">(.*?)</ul>', html, re.S).group(1)
    assert re.findall(r'<a href="/dashboard/p/(\d)/tokens" (aria-current="page")?', menu) == [
        ("2", ""),
        ("3", 'aria-current="page"'),
    ]  # by name: beta, gamma


def test_home_opens_the_last_used_project_else_the_first_by_name(app, client, users):
    with app.app_context():
        accounts.create_user("carol@example.com", PASSWORD, ["zulu", "beta"], utcnow())
        accounts.add_project(accounts.find_user("carol@example.com"), "alpha", utcnow())
    log_in(client, email="carol@example.com")
    assert client.get("/dashboard/").headers["Location"] == "/dashboard/p/1/tokens"  # alpha
    assert client.get("/dashboard/p/4/tokens").status_code == 200  # zulu, used last
    assert client.get("/dashboard/").headers["Location"] == "/dashboard/p/4/tokens"
    client.post("/logout")
    assert log_in(client, email="carol@example.com").headers["Location"] == "/dashboard/"
    assert client.get("/dashboard/").headers["Location"] == "/dashboard/p/4/tokens"
    client.post("/logout")
    log_in(client, email="bob@example.com")  # not one of bob's: his first by name
    assert client.get("/dashboard/").headers["Location"] == "/dashboard/p/2/tokens"
