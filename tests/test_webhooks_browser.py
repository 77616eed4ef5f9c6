"""The dashboard's webhook pages in a real Chromium, against a live server whose own
background sender calls a real receiver in this process."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.sync_api import expect

from waitpoint import webhooks

from .browser import PASSWORD, LiveApi, create_operator, serious_violations
from .support import server_on_new_database

pytestmark = pytest.mark.slow

SHOTS = "/tmp/webhooks-{}-{}.png"


class Receiver(ThreadingHTTPServer):
    """Answers every POST with ``self.answer`` and keeps what it got."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.answer = 500
        self.received: list[tuple[bytes, dict]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}/hooks"


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.received.append((body, {k.lower(): v for k, v in self.headers.items()}))
        self.send_response(self.server.answer)
        self.end_headers()
        self.wfile.write(b"receiver says no" if self.server.answer >= 300 else b"ok")

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def receiver():
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    thread.join()
    server.server_close()


@pytest.fixture(scope="module")
def hook_server(tmp_path_factory):
    """A live server allowed to call this machine's loopback receiver."""
    with server_on_new_database(
        tmp_path_factory.mktemp("hooks"),
        WAITPOINT_WEBHOOK_ALLOW_PRIVATE="127.0.0.1",
        WAITPOINT_WEBHOOK_INTERVAL="0.2",
    ) as server:
        yield server


@pytest.fixture(scope="module")
def hook_api(hook_server):
    api = LiveApi(hook_server, hook_server.new_key("hooks"))
    create_operator(hook_server, "hooks")
    yield api
    api.http.close()


def log_in(page, server):
    page.goto(server.url + "/dashboard/")
    page.get_by_label("Email").fill("ops@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Tokens in hooks")).to_be_visible()


def shoot(page, name):
    for width in (1280, 360):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=SHOTS.format(name, width), full_page=True)
        overflow = page.evaluate("document.documentElement.scrollWidth > window.innerWidth")
        assert not overflow, f"{name} scrolls sideways at {width} px"
    page.set_viewport_size({"width": 1280, "height": 900})


def test_add_an_endpoint_see_a_failed_delivery_and_redeliver(
    browser, hook_server, hook_api, receiver
):
    context = browser.new_context()
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = context.new_page()
    try:
        log_in(page, hook_server)
        page.get_by_role("navigation", name="Project").get_by_role("link", name="Webhooks").click()
        expect(page.get_by_role("heading", name="Webhooks in hooks")).to_be_visible()

        page.get_by_label("Endpoint URL").fill("ftp://nope.example.com/")  # refused, in place
        page.get_by_role("button", name="Add endpoint").click()
        expect(page.locator("#url-error")).to_contain_text("must be an absolute http://")
        expect(page.get_by_label("Endpoint URL")).to_have_attribute("aria-invalid", "true")

        page.get_by_label("Endpoint URL").fill(receiver.url)
        page.get_by_label("waitpoint.timed_out").uncheck()
        page.get_by_role("button", name="Add endpoint").click()
        secret = page.locator("#webhook-secret").inner_text()
        assert secret.startswith("whsec_")
        page.get_by_role("button", name="Copy").click()
        expect(page.locator(".secret-once .copy-status")).to_have_text("Copied.")
        assert page.evaluate("navigator.clipboard.readText()") == secret
        expect(page.locator(".endpoint")).to_contain_text("waitpoint.created, waitpoint.completed")
        shoot(page, "list")
        page.reload()
        expect(page.locator("#webhook-secret")).to_have_count(0)  # once
        assert secret not in page.content()

        token = hook_api.create(title="Refund €240?")["id"]  # the sender calls the receiver
        page.get_by_role("link", name=f"Deliveries to {receiver.url}").click()
        attempt = page.locator(".attempts tbody tr").first
        for _ in range(50):
            if page.locator(".attempts").count():
                break
            page.wait_for_timeout(200)
            page.reload()
        expect(attempt).to_contain_text("500")
        expect(attempt).to_contain_text("receiver says no")
        expect(page.locator(".delivery").first).to_contain_text("waitpoint.created")
        body, headers = receiver.received[0]
        event = webhooks.verify(body, headers, secret)  # signed with the secret shown once
        assert event.type == "waitpoint.created" and event.data["id"] == token
        shoot(page, "log")

        receiver.answer = 204
        page.get_by_role("button", name="Redeliver").first.click()
        expect(page.locator(".notice-success")).to_contain_text("will be sent again")
        for _ in range(50):
            if page.locator(".badge-delivery-delivered").count():
                break
            page.wait_for_timeout(200)
            page.reload()
        expect(page.locator(".delivery").first.locator(".badge")).to_have_text("Delivered")
        assert (
            len(receiver.received) >= 2
            and receiver.received[-1][1]["webhook-id"] == (receiver.received[0][1]["webhook-id"])
        )

        page.get_by_role("link", name=token.removeprefix("waitpoint_")[:8]).click()
        section = page.locator(".token-deliveries")
        expect(section.get_by_role("heading", name="Webhook deliveries")).to_be_visible()
        expect(section).to_contain_text("receiver says no")
        expect(section.get_by_role("button", name="Redeliver")).to_have_count(1)
        shoot(page, "detail")
    finally:
        context.close()


def test_without_javascript_an_endpoint_is_added_disabled_and_removed(
    browser, hook_server, hook_api
):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        log_in(page, hook_server)
        page.goto(hook_server.url + "/dashboard/p/1/webhooks")
        page.get_by_label("Endpoint URL").fill("https://nojs.example.com/hook")
        page.get_by_role("button", name="Add endpoint").click()
        expect(page.locator("#webhook-secret")).to_contain_text("whsec_")
        card = page.locator(".endpoint", has_text="nojs.example.com")
        card.get_by_role("button", name="Disable").click()
        expect(card).to_contain_text("disabled by ops@example.com")
        card.get_by_text("Remove…").click()
        card.get_by_role("button", name="Confirm: remove").click()
        expect(page.locator(".notice-success")).to_contain_text("Removed")
        expect(page.locator(".endpoint", has_text="nojs.example.com")).to_have_count(0)
    finally:
        context.close()


@pytest.mark.parametrize("view", ["list", "list_error", "log", "detail"])
def test_no_serious_accessibility_violations(browser, hook_server, hook_api, receiver, view):
    context = browser.new_context(bypass_csp=True)
    page = context.new_page()
    try:
        log_in(page, hook_server)
        hooks = hook_server.url + "/dashboard/p/1/webhooks"
        page.goto(hooks)
        page.get_by_label("Endpoint URL").fill(receiver.url if view != "list_error" else "nope")
        page.get_by_role("button", name="Add endpoint").click()
        if view == "log":
            page.locator(".endpoint a", has_text="Deliveries").first.click()
        elif view == "detail":
            token = hook_api.create(title="A11y")["id"]
            page.goto(f"{hook_server.url}/dashboard/p/1/tokens/{token}")
        assert serious_violations(page) == []
    finally:
        context.close()
