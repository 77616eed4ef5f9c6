"""GET /api/v1/waitpoints/tokens: filters and cursor pagination; GET one token."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from app.domain import lifecycle, stored
from app.domain.timeutil import utcnow
from app.models import Token

from .support import TOKENS, error_of


def listing(api, **params):
    response = api.get(TOKENS, query_string=params)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def ids(page):
    return [t["id"] for t in page["data"]]


def test_it_lists_newest_first_without_outputs(api):
    made = [api.create(tags=[f"n{i}"])["id"] for i in range(3)]
    api.post(f"{TOKENS}/{made[0]}/complete", json={"data": 1})
    page = listing(api)
    assert ids(page) == made[::-1]
    assert page["pagination"] == {}
    for item in page["data"]:
        assert not {"output", "outputType", "outputIsError"} & set(item)


def test_a_key_sees_only_its_own_projects_tokens(api, other_api):
    mine = api.create(tags=["t"])["id"]
    theirs = other_api.create(tags=["t"])["id"]
    assert ids(listing(api)) == [mine]
    assert ids(listing(other_api, **{"filter[tags]": "t"})) == [theirs]


def test_retrieving_another_projects_token_is_404(api, other_api):
    theirs = other_api.create()["id"]
    assert error_of(api.get(f"{TOKENS}/{theirs}"), 404) == "token: not found"
    assert error_of(api.get(f"{TOKENS}/waitpoint_unknown"), 404) == "token: not found"


def test_pages_walk_forward_and_back(api):
    made = [api.create()["id"] for _ in range(7)][::-1]  # newest first
    first = listing(api, **{"page[size]": 3})
    assert ids(first) == made[:3]
    assert "previous" not in first["pagination"]
    second = listing(api, **{"page[size]": 3, "page[after]": first["pagination"]["next"]})
    assert ids(second) == made[3:6]
    third = listing(api, **{"page[size]": 3, "page[after]": second["pagination"]["next"]})
    assert ids(third) == made[6:]
    assert "next" not in third["pagination"]
    back = listing(api, **{"page[size]": 3, "page[before]": third["pagination"]["previous"]})
    assert ids(back) == made[3:6]
    assert back["pagination"]["next"] and back["pagination"]["previous"]
    start = listing(api, **{"page[size]": 3, "page[before]": back["pagination"]["previous"]})
    assert ids(start) == made[:3]
    assert "previous" not in start["pagination"]


def test_a_page_stays_put_while_new_tokens_arrive(api):
    made = [api.create()["id"] for _ in range(4)][::-1]
    first = listing(api, **{"page[size]": 2})
    api.create()
    second = listing(api, **{"page[size]": 2, "page[after]": first["pagination"]["next"]})
    assert ids(second) == made[2:]


@pytest.mark.parametrize("size", ["0", "101", "ten", "-1"])
def test_page_size_is_bounded(api, size):
    assert error_of(api.get(TOKENS, query_string={"page[size]": size}), 400).startswith(
        "page[size]:"
    )


@pytest.mark.parametrize("cursor", ["garbage!", "dDEyYQ", "x" * 65])
def test_a_bad_cursor_is_400(api, cursor):
    assert error_of(api.get(TOKENS, query_string={"page[after]": cursor}), 400).startswith(
        "page[after]:"
    )


def test_status_filter_uses_effective_status(app, api):
    waiting = api.create(timeout="1h")["id"]
    done = api.create()["id"]
    api.post(f"{TOKENS}/{done}/complete", json={})
    overdue = api.create(timeout="1h")["id"]
    with app.app_context():  # move one deadline into the past without sweeping
        from app.extensions import db

        token = db.session.get(Token, stored.find_token(overdue).pk)  # the ORM row, to edit
        token.timeout_at = utcnow() - timedelta(seconds=1)
        for tag in token_tags(token):
            tag.timeout_at = token.timeout_at
        db.session.commit()
    assert ids(listing(api, **{"filter[status]": "WAITING"})) == [waiting]
    assert ids(listing(api, **{"filter[status]": "TIMED_OUT"})) == [overdue]
    assert ids(listing(api, **{"filter[status]": "COMPLETED"})) == [done]
    assert ids(listing(api, **{"filter[status]": "COMPLETED,TIMED_OUT"})) == [overdue, done]
    assert api.retrieve(overdue)["status"] == "TIMED_OUT"


def token_tags(token):
    from sqlalchemy import select

    from app.extensions import db
    from app.models import TokenTag

    return db.session.execute(select(TokenTag).where(TokenTag.token_pk == token.pk)).scalars()


def test_an_unknown_status_is_400(api):
    message = error_of(api.get(TOKENS, query_string={"filter[status]": "WAITING,DONE"}), 400)
    assert message.startswith("filter[status]:") and "DONE" in message


def test_tag_filter_matches_any_of_the_tags(api):
    a = api.create(tags=["a"])["id"]
    b = api.create(tags=["b", "x"])["id"]
    api.create(tags=["c"])
    both = api.create(tags=["a", "b"])["id"]
    assert ids(listing(api, **{"filter[tags]": "a,b"})) == [both, b, a]
    assert ids(listing(api, **{"filter[tags]": "x"})) == [b]


def test_tag_filter_with_status_and_pages(api):
    made = [api.create(tags=["t", f"i{i}"])["id"] for i in range(5)][::-1]
    api.post(f"{TOKENS}/{made[1]}/complete", json={})
    params = {"filter[tags]": "t,i0", "filter[status]": "WAITING", "page[size]": 2}
    first = listing(api, **params)
    assert ids(first) == [made[0], made[2]]
    second = listing(api, **params, **{"page[after]": first["pagination"]["next"]})
    assert ids(second) == [made[3], made[4]]
    assert "next" not in second["pagination"]


def test_idempotency_key_filter_is_exact(api):
    keyed = api.create(idempotencyKey="Order-7")["id"]
    api.create(idempotencyKey="order-7")
    assert ids(listing(api, **{"filter[idempotencyKey]": "Order-7"})) == [keyed]


def test_created_at_filters(app, api):
    old = api.create(tags=["t"])["id"]
    with app.app_context():
        from app.extensions import db

        db.session.get(Token, stored.find_token(old).pk).created_at = utcnow() - timedelta(days=2)
        db.session.commit()
    new = api.create(tags=["t"])["id"]
    assert ids(listing(api, **{"filter[createdAt][period]": "1d"})) == [new]
    assert ids(listing(api, **{"filter[createdAt][period]": "3d"})) == [new, old]
    yesterday = datetime.now(UTC) - timedelta(days=1)
    epoch_ms = str(int(yesterday.timestamp() * 1000))
    assert ids(listing(api, **{"filter[createdAt][from]": epoch_ms})) == [new]
    assert ids(listing(api, **{"filter[createdAt][to]": yesterday.isoformat()})) == [old]
    assert ids(listing(api, **{"filter[createdAt][to]": epoch_ms, "filter[tags]": "t"})) == [old]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("filter[createdAt][period]", "yesterday"),
        ("filter[createdAt][from]", "last week"),
        ("filter[createdAt][to]", "2026-11-28T10:00:00"),
        ("filter[tags]", "a,,b"),
        ("filter[tags]", "a, b"),
        ("filter[colour]", "red"),
    ],
)
def test_bad_filters_are_400_naming_the_parameter(api, name, value):
    assert error_of(api.get(TOKENS, query_string={name: value}), 400).startswith(f"{name}:")


def test_a_repeated_parameter_is_400(api):
    response = api.get(f"{TOKENS}?filter[status]=WAITING&filter[status]=COMPLETED")
    assert error_of(response, 400).startswith("filter[status]:")


def test_retrieve_reports_a_timeout_as_an_error_output(app, api):
    token = api.create(timeout="1m")
    with app.app_context():
        assert lifecycle.expire_due(utcnow() + timedelta(minutes=2)) == 1
    body = api.retrieve(token["id"])
    assert body["status"] == "TIMED_OUT"
    assert body["outputIsError"] is True
    assert json.loads(body["output"]) == {
        "code": "WAITPOINT_TIMEOUT",
        "message": f"Waitpoint timed out at {body['timeoutAt']}",
    }
    assert body["completedAt"] == body["timeoutAt"]


@pytest.mark.parametrize("cursor", ["dMKy", "dDk5OTk5OTk5OTk5OTk5OTk5OTk", "dC0x"])
def test_cursors_that_only_look_numeric_are_400(api, cursor):
    response = api.get(TOKENS, query_string={"page[after]": cursor})
    assert error_of(response, 400) == "page[after]: is not a valid cursor"


def test_at_most_ten_tags_in_a_filter(api):
    tags = ",".join(f"t{i}" for i in range(11))
    assert error_of(api.get(TOKENS, query_string={"filter[tags]": tags}), 400).startswith(
        "filter[tags]:"
    )


@pytest.mark.parametrize("name", ["filter[tags]", "filter[idempotencyKey]"])
def test_nul_characters_in_filters_are_400(api, name):
    response = api.get(TOKENS, query_string={name: "a\u0000"})
    assert "NUL" in error_of(response, 400)


def test_an_id_with_odd_characters_is_simply_not_found(api):
    for token_id in ("waitpoint_%00", "waitpoint_A-B", "waitpoint_" + "a" * 40):
        assert error_of(api.get(f"{TOKENS}/{token_id}"), 404) == "token: not found"
