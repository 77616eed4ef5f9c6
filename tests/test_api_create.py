"""POST /api/v1/waitpoints/tokens: every field rule of docs/api.md."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from .support import TOKENS, Api, error_of


def parse_iso(text):
    assert text.endswith("Z") and len(text) == 24, text
    return datetime.fromisoformat(text)


def test_it_creates_a_token_with_an_empty_body(api, client):
    response = client.post(TOKENS, headers=api.headers)  # no body at all
    assert response.status_code == 200
    body = response.get_json()
    assert list(body) == ["id", "url", "isCached"]
    assert body["id"].startswith("waitpoint_")
    assert body["isCached"] is False
    assert f"/api/v1/waitpoints/tokens/{body['id']}/callback/" in body["url"]
    token = api.retrieve(body["id"])
    assert token["status"] == "WAITING"
    assert token["tags"] == []
    for absent in ("timeoutAt", "idempotencyKey", "completedAt", "output"):
        assert absent not in token


def test_it_uses_the_public_url_for_callback_urls(app_factory, api_key):
    app = app_factory(WAITPOINT_PUBLIC_URL="https://approvals.example.com")
    token = Api(app.test_client(), api_key).create()
    assert token["url"].startswith("https://approvals.example.com/api/v1/waitpoints/tokens/")


@pytest.mark.parametrize(
    ("timeout", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("1m", timedelta(minutes=1)),
        ("2h", timedelta(hours=2)),
        ("2hr", timedelta(hours=2)),
        ("3d", timedelta(days=3)),
        ("4w", timedelta(weeks=4)),
        ("1h30m", timedelta(minutes=90)),
    ],
)
def test_it_accepts_a_duration_timeout(api, timeout, expected):
    before = datetime.now(UTC)
    token = api.retrieve(api.create(timeout=timeout)["id"])
    timeout_at = parse_iso(token["timeoutAt"])
    created_at = parse_iso(token["createdAt"])
    assert abs((timeout_at - created_at) - expected) < timedelta(milliseconds=2)
    assert created_at >= before - timedelta(milliseconds=1)


def test_it_accepts_an_iso_timeout_with_offset(api):
    deadline = (datetime.now(UTC) + timedelta(hours=5)).replace(microsecond=123000)
    as_offset = deadline.astimezone(timezone(timedelta(hours=2))).isoformat()
    assert as_offset.endswith("+02:00")
    token = api.retrieve(api.create(timeout=as_offset)["id"])
    assert parse_iso(token["timeoutAt"]) == deadline


def test_it_accepts_the_sdks_date_serialization(api):
    deadline = datetime.now(UTC) + timedelta(days=1)
    text = deadline.strftime("%Y-%m-%dT%H:%M:%S.") + f"{deadline.microsecond // 1000:03d}Z"
    token = api.retrieve(api.create(timeout=text)["id"])
    assert token["timeoutAt"] == text


@pytest.mark.parametrize(
    ("timeout", "reason"),
    [
        ("soon", "duration"),
        ("10", "duration"),
        ("10y", "duration"),
        ("-5m", "duration"),
        ("1.5h", "duration"),
        ("", "duration"),
        ("0s", "future"),
        ("2020-01-01T00:00:00Z", "future"),
        ("2030-01-01T00:00:00", "offset"),
        ("2030-13-01T00:00:00Z", "ISO 8601"),
        ("1" * 101 + "s", "100 characters"),
    ],
)
def test_it_rejects_a_bad_timeout_naming_the_field(api, timeout, reason):
    message = error_of(api.post(TOKENS, json={"timeout": timeout}), 400)
    assert message.startswith("timeout:")
    assert reason in message


def test_it_rejects_a_timeout_that_is_not_a_string(api):
    assert error_of(api.post(TOKENS, json={"timeout": 60}), 400).startswith("timeout:")


def test_it_keeps_tags_in_order_without_duplicates(api):
    token = api.retrieve(api.create(tags=["b", "a", "b", "c"])["id"])
    assert token["tags"] == ["b", "a", "c"]


def test_it_accepts_a_single_string_tag(api):
    assert api.retrieve(api.create(tags="solo")["id"])["tags"] == ["solo"]


def test_it_accepts_ten_tags_and_counts_duplicates_once(api):
    tags = [f"t{i}" for i in range(10)]
    assert api.retrieve(api.create(tags=tags + ["t0"])["id"])["tags"] == tags


def test_it_rejects_more_than_ten_tags_with_422(api):
    message = error_of(api.post(TOKENS, json={"tags": [f"t{i}" for i in range(11)]}), 422)
    assert message.startswith("tags:") and "10" in message


@pytest.mark.parametrize("tags", [[""], ["x" * 129], "", "x" * 129, [1], ["ok", None], {"a": 1}])
def test_it_rejects_bad_tags_with_400(api, tags):
    assert error_of(api.post(TOKENS, json={"tags": tags}), 400).startswith("tags")


@pytest.mark.parametrize(
    ("tags", "reason"),
    [
        (["a,b"], "a tag must not contain commas"),
        ("a,b", "a tag must not contain commas"),
        ([" padded"], "a tag must not start or end with whitespace"),
        (["padded\t"], "a tag must not start or end with whitespace"),
    ],
)
def test_it_refuses_tags_that_a_list_filter_could_not_match(api, tags, reason):
    assert error_of(api.post(TOKENS, json={"tags": tags}), 400) == f"tags: {reason}" + (
        " (filter[tags] separates tags with them)" if "commas" in reason else ""
    )


def test_it_accepts_a_128_character_tag(api):
    assert api.retrieve(api.create(tags=["x" * 128])["id"])["tags"] == ["x" * 128]


@pytest.mark.parametrize("key", ["", "k" * 2049, 5])
def test_it_rejects_a_bad_idempotency_key(api, key):
    assert error_of(api.post(TOKENS, json={"idempotencyKey": key}), 400).startswith(
        "idempotencyKey:"
    )


def test_it_accepts_a_2048_character_idempotency_key(api):
    first = api.create(idempotencyKey="k" * 2048)
    assert api.create(idempotencyKey="k" * 2048)["id"] == first["id"]


@pytest.mark.parametrize("ttl", ["1 hour", "0s", "", "1y", 3600])
def test_it_rejects_a_bad_idempotency_key_ttl(api, ttl):
    response = api.post(TOKENS, json={"idempotencyKey": "k", "idempotencyKeyTTL": ttl})
    message = error_of(response, 400)
    assert message.startswith("idempotencyKeyTTL:")


def test_a_repeated_idempotency_key_returns_the_original_token(api):
    first = api.create(idempotencyKey="order-1", tags=["a"], timeout="1h")
    again = api.create(idempotencyKey="order-1", tags=["b"], timeout="5m")
    assert again == {**first, "isCached": True}
    token = api.retrieve(first["id"])
    assert token["tags"] == ["a"]  # the repeat's tags and timeout are ignored
    assert token["idempotencyKey"] == "order-1"
    assert "idempotencyKeyExpiresAt" not in token


def test_a_completed_token_is_still_returned_for_its_key(api):
    first = api.create(idempotencyKey="order-2")
    api.post(f"{TOKENS}/{first['id']}/complete", json={"data": 1})
    assert api.create(idempotencyKey="order-2")["id"] == first["id"]


def test_idempotency_keys_are_per_project(api, other_api):
    mine = api.create(idempotencyKey="shared")
    theirs = other_api.create(idempotencyKey="shared")
    assert mine["id"] != theirs["id"]
    assert theirs["isCached"] is False


def test_the_idempotency_key_ttl_is_reported(api):
    token = api.retrieve(api.create(idempotencyKey="k", idempotencyKeyTTL="1h")["id"])
    lived = parse_iso(token["idempotencyKeyExpiresAt"]) - parse_iso(token["createdAt"])
    assert abs(lived - timedelta(hours=1)) < timedelta(milliseconds=2)


def test_unknown_fields_are_refused_not_ignored(api):
    message = error_of(api.post(TOKENS, json={"timout": "1h"}), 400)
    assert message.startswith("timout:")


@pytest.mark.parametrize("body", ["[1, 2]", '"text"', "42", "null"])
def test_a_body_that_is_not_an_object_is_refused(api, body):
    response = api.post(TOKENS, data=body, content_type="application/json")
    assert error_of(response, 400) == "body: must be a JSON object"


def test_invalid_json_is_refused(api):
    response = api.post(TOKENS, data="{nope", content_type="application/json")
    assert error_of(response, 400) == "body: is not valid JSON"


def test_a_body_over_64_kib_is_refused_with_413(api):
    body = '{"idempotencyKey": "' + "x" * (64 * 1024) + '"}'
    response = api.post(TOKENS, data=body, content_type="application/json")
    assert "too large" in error_of(response, 413)


@pytest.mark.parametrize(
    "header",
    [None, "Bearer", "Basic abc", "Bearer wp_not-a-real-key", "wp_no-scheme"],
)
def test_it_requires_a_valid_api_key(client, api, header):
    headers = {} if header is None else {"Authorization": header}
    message = error_of(client.post(TOKENS, json={}, headers=headers), 401)
    assert message.startswith("Authorization:")


def test_a_revoked_key_is_refused(app, client, api_key, runner):
    Api(client, api_key).create()
    result = runner.invoke(args=["keys", "revoke", api_key])
    assert result.exit_code == 0, result.output
    response = client.post(TOKENS, json={}, headers={"Authorization": f"Bearer {api_key}"})
    assert "revoked" in error_of(response, 401)


@pytest.mark.parametrize("timeout", ["9999-12-31T23:00:00-05:00", "0001-01-01T00:00:00+01:00"])
def test_a_timeout_out_of_range_is_400(api, timeout):
    assert error_of(api.post(TOKENS, json={"timeout": timeout}), 400).startswith("timeout:")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": "a\u0000b"}, "title"),
        ({"tags": ["ok", "nul\u0000"]}, "tags"),
        ({"idempotencyKey": "\u0000"}, "idempotencyKey"),
        ({"details": {"k": "v\u0000"}}, "details"),
    ],
)
def test_text_a_database_cannot_hold_is_400(api, body, field):
    message = error_of(api.post(TOKENS, json=body), 400)
    assert message.startswith(f"{field}:")


def test_lone_surrogates_are_not_valid_json(api):
    message = error_of(api.post(TOKENS, json={"description": "\ud800"}), 400)
    assert message.startswith("body: is not valid JSON") and "surrogate" in message


def test_eleven_tags_are_422_even_when_one_is_also_invalid(api):
    tags = [f"t{i}" for i in range(10)] + [""]
    assert error_of(api.post(TOKENS, json={"tags": tags}), 422).startswith("tags:")


def test_a_bad_tag_names_the_problem(api):
    assert error_of(api.post(TOKENS, json={"tags": ["ok", ""]}), 400) == (
        "tags: String should have at least 1 character"
    )
