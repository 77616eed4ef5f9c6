"""Behind reverse proxies: the client's address comes from X-Forwarded-For only when the
operator says how many proxies to trust (WAITPOINT_TRUSTED_PROXIES)."""

import pytest

from .support import Api, decide_path

FORWARDED = {"X-Forwarded-For": "198.51.100.7, 203.0.113.9", "X-Forwarded-Proto": "https"}


def decided_ip(app, api_key) -> str:
    client = app.test_client()
    api = Api(client, api_key)
    token = api.create()
    response = client.post(decide_path(token), data={"approve": "Approve"}, headers=FORWARDED)
    assert response.status_code == 303
    return api.retrieve(token["id"])["decision"]["ip"]


def test_without_trusted_proxies_forwarded_headers_are_ignored(app, api_key):
    assert decided_ip(app, api_key) == "127.0.0.1"


@pytest.mark.parametrize(("proxies", "client_ip"), [(1, "203.0.113.9"), (2, "198.51.100.7")])
def test_the_client_is_the_address_the_nearest_trusted_proxy_saw(
    app_factory, api_key, proxies, client_ip
):
    assert decided_ip(app_factory(WAITPOINT_TRUSTED_PROXIES=proxies), api_key) == client_ip


def test_the_forwarded_scheme_and_host_build_the_callback_url(app_factory, api_key):
    app = app_factory(WAITPOINT_TRUSTED_PROXIES=1)
    headers = {
        "Authorization": f"Bearer {api_key}",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "approvals.example.com",
    }
    body = app.test_client().post("/api/v1/waitpoints/tokens", json={}, headers=headers).get_json()
    assert body["url"].startswith("https://approvals.example.com/api/v1/waitpoints/tokens/")
