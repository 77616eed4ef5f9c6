"""Malformed, truncated, oversized and slow requests against a real ``waitpoint serve``.

These are about bytes on the wire (chunked framing, a body shorter than its length,
request lines gunicorn refuses, clients that stop half way), so they speak raw HTTP
over a socket to the server an operator would run.
"""

import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from .support import TOKENS, callback_path, server_on_new_database

pytestmark = pytest.mark.slow

CLIENT_TIMEOUT = 1.5
THREADS = 40


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with server_on_new_database(
        tmp_path_factory.mktemp("framing"),
        WAITPOINT_WORKERS="1",
        WAITPOINT_THREADS=str(THREADS),
        WAITPOINT_MAX_WAITERS="8",
        WAITPOINT_CLIENT_TIMEOUT=str(CLIENT_TIMEOUT),
    ) as process:
        yield process


@pytest.fixture(scope="module")
def key(server):
    return server.new_key("framing")


@pytest.fixture
def http(server, key):
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=30
    ) as client:
        yield client


def exchange(server, data: bytes, *, half_close: bool = False, timeout: float = 10):
    """Send raw bytes; return (status, headers, body) of the answer, or None if the
    server closed the connection without one."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as sock:
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    if not received:
        return None
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


def request(method: str, path: str, headers: dict, body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: test", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def chunks(body: bytes, size: int = 60_000) -> bytes:
    parts = [body[i : i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"


def chunked_post(server, path: str, body: bytes, key: str | None = None):
    headers = {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return exchange(server, request("POST", path, headers, chunks(body)))


def rejection(size: int) -> bytes:
    return json.dumps({"approved": False, "pad": "x" * size}).encode()


def test_a_chunked_callback_over_the_limit_is_413_and_decides_nothing(server, key, http):
    token = http.post(TOKENS, json={}).json()
    status, headers, body = chunked_post(server, callback_path(token), rejection(1100 * 1024))
    assert status == 413
    assert json.loads(body) == {"error": "request body is too large (limit 1048576 bytes)"}
    assert http.get(f"{TOKENS}/{token['id']}").json()["status"] == "WAITING"


def test_a_chunked_callback_within_the_limit_completes_with_its_body(server, http):
    token = http.post(TOKENS, json={}).json()
    status, _, body = chunked_post(server, callback_path(token), rejection(200 * 1024))
    assert status == 200 and json.loads(body)["applied"] is True
    output = json.loads(http.get(f"{TOKENS}/{token['id']}").json()["output"])
    assert output["approved"] is False and len(output["pad"]) == 200 * 1024


@pytest.mark.parametrize(
    ("route", "field", "size", "limit"),
    [("create", "details", 70 * 1024, 65536), ("complete", "data", 1100 * 1024, 1048576)],
)
def test_chunked_bodies_over_a_routes_limit_are_413(server, key, http, route, field, size, limit):
    path = TOKENS
    if route == "complete":
        path = f"{TOKENS}/{http.post(TOKENS, json={}).json()['id']}/complete"
    body = json.dumps({field: {"a": "x" * size}}).encode()
    status, _, answer = chunked_post(server, path, body, key)
    assert status == 413
    assert json.loads(answer) == {"error": f"request body is too large (limit {limit} bytes)"}


def test_a_chunked_create_within_the_limit_works(server, key):
    status, _, body = chunked_post(server, TOKENS, b'{"tags": ["chunked"]}', key)
    assert status == 200 and json.loads(body)["isCached"] is False


def test_a_malformed_chunk_size_is_400_not_500(server, http):
    token = http.post(TOKENS, json={}).json()
    headers = {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}
    status, _, body = exchange(server, request("POST", callback_path(token), headers, b"zz\r\n"))
    assert status == 400
    assert json.loads(body)["error"].startswith("body: malformed chunked encoding")
    assert http.get(f"{TOKENS}/{token['id']}").json()["status"] == "WAITING"


def test_a_callback_body_shorter_than_its_length_is_400_and_decides_nothing(server, http):
    token = http.post(TOKENS, json={}).json()
    headers = {"Content-Type": "application/json", "Content-Length": "100"}
    data = request("POST", callback_path(token), headers, b'{"approved":false}')
    status, _, body = exchange(server, data, half_close=True)
    assert status == 400
    assert json.loads(body) == {
        "error": "body: the request ended after 18 of the 100 bytes its Content-Length declares"
    }
    assert http.get(f"{TOKENS}/{token['id']}").json()["status"] == "WAITING"


def test_a_create_cut_short_creates_nothing(server, key, http):
    before = len(http.get(TOKENS, params={"page[size]": 100}).json()["data"])
    headers = {
        "Authorization": f"Bearer {key}",
        "Content-Type": "application/json",
        "Content-Length": "60",
    }
    status, _, _ = exchange(server, request("POST", TOKENS, headers, b"{}"), half_close=True)
    assert status == 400
    assert len(http.get(TOKENS, params={"page[size]": 100}).json()["data"]) == before


def test_a_request_line_over_the_limit_is_a_json_414(server):
    status, headers, body = exchange(server, request("GET", f"{TOKENS}?x={'a' * 9000}", {}))
    assert status == 414 and headers["Content-Type"] == "application/json"
    assert json.loads(body)["error"].startswith("request: Request Line is too large")


def test_a_list_url_with_ten_long_tags_fits_the_request_line(server, http):
    tags = ",".join(f"{i}" + "é" * 127 for i in range(10))  # about 2,600 bytes, 7,700 encoded
    response = http.get(TOKENS, params={"filter[tags]": tags})
    assert response.status_code == 200, response.text


def test_an_invalid_request_line_is_a_json_400(server):
    status, headers, body = exchange(server, b"GARBAGE\r\n\r\n")
    assert status == 400 and headers["Content-Type"] == "application/json"
    assert json.loads(body)["error"].startswith("request: Invalid HTTP request line")


def test_clients_that_never_finish_their_headers_do_not_hold_the_threads(server):
    """More slow clients than the worker has threads: without a time limit on reading a
    request, each holds a thread forever and the server stops answering."""
    sockets = []
    try:
        for _ in range(THREADS + 10):
            sock = socket.create_connection(("127.0.0.1", server.port))
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\n")  # and nothing more
            sockets.append(sock)
        time.sleep(0.5)
        started = time.monotonic()
        response = httpx.get(f"{server.url}/healthz", timeout=CLIENT_TIMEOUT * 4)
        assert response.status_code == 200
        assert time.monotonic() - started < CLIENT_TIMEOUT * 3
        # The slow ones are closed without an answer, each within its own deadline (the
        # last ones waited for a thread first).
        give_up = time.monotonic() + CLIENT_TIMEOUT * 8
        for sock in sockets:
            sock.settimeout(max(0.1, give_up - time.monotonic()))
            assert sock.recv(100) == b""
    finally:
        for sock in sockets:
            sock.close()


def test_a_client_that_trickles_its_headers_is_cut_off_at_the_deadline(server):
    """A byte every 0.1 s never lets a single read time out: the deadline is per request."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        started = time.monotonic()
        closed_after = None
        for byte in b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Slow: " + b"a" * 100:
            try:
                sock.sendall(bytes([byte]))
                if sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b"":
                    closed_after = time.monotonic() - started
                    break
            except BlockingIOError:
                time.sleep(0.1)  # still open, nothing to read: go on trickling
            except OSError:
                closed_after = time.monotonic() - started
                break
        assert closed_after is not None and closed_after < CLIENT_TIMEOUT + 1


def test_ordinary_requests_in_parallel_still_work(server, http):
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda _: http.post(TOKENS, json={}).status_code, range(40)))
    assert statuses == [200] * 40
