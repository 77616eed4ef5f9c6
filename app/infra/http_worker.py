"""The gunicorn worker of ``waitpoint serve``: gthread, with two things added.

- Errors gunicorn answers itself, before the app sees a request (a request line over
  the limit, a malformed request line or header), are JSON like every API error
  (``{"error": "request: ..."}``), not gunicorn's HTML page.
- A client has ``WAITPOINT_CLIENT_TIMEOUT`` seconds to send a request's headers and
  body. gunicorn waits for the first byte without a thread, but then reads in a
  thread with no time limit: a client that sends half its headers and stops would hold
  that thread forever, and a few hundred such clients every thread.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time

from gunicorn.http.errors import NoMoreData
from gunicorn.workers.gthread import ThreadWorker

from ..config import client_timeout


class WaitpointWorker(ThreadWorker):
    def init_process(self):
        self.client_timeout = client_timeout(os.environ)
        super().init_process()

    def handle_exit(self, sig, frame):
        """SIGTERM: stop as gunicorn does, and let the open long polls answer now instead
        of holding the shutdown (from a thread: not inside the signal handler)."""
        super().handle_exit(sig, frame)
        extensions = getattr(self.wsgi, "extensions", {})
        hub = extensions.get("waitpoint_waits")
        if hub is not None:
            threading.Thread(target=hub.release_all, name="release-waits", daemon=True).start()

    def handle(self, conn):
        if not hasattr(conn, "read_deadline"):
            conn.read_deadline = None
            conn.init = self._bounded_init(conn, conn.init)
        return super().handle(conn)

    def _bounded_init(self, conn, init):
        """``conn.init`` runs before each request is parsed: (re)start its deadline."""

        def bounded():
            init()
            if conn.read_deadline is None and conn.parser is not None and not conn.is_http2:
                unreader = conn.parser.unreader
                conn.read_deadline = ReadDeadline(unreader.sock, self.client_timeout, self.log)
                unreader.sock = conn.read_deadline
            if conn.read_deadline is not None:
                conn.read_deadline.start()

        return bounded

    def handle_error(self, req, client, addr, exc):
        """gunicorn's own answer, with its status, as a JSON error."""
        answer = _Captured()
        super().handle_error(req, answer, addr, exc)
        status, _, reason = answer.status_line().partition(" ")
        message = "internal server error" if status == "500" else f"request: {exc or reason}"
        body = json.dumps({"error": message}).encode()
        head = (
            f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        try:
            client.sendall(head.encode("latin-1") + body)
        except OSError:
            self.log.debug("Failed to send error message.")


class ReadDeadline:
    """The socket a request is read from, giving up at a deadline set per request."""

    def __init__(self, sock, seconds: float, log):
        self._sock = sock
        self._seconds = seconds
        self._log = log
        self._deadline = 0.0

    def start(self) -> None:
        self._deadline = time.monotonic() + self._seconds

    def recv(self, size: int) -> bytes:
        left = self._deadline - time.monotonic()
        try:
            if left <= 0:
                raise TimeoutError
            self._sock.settimeout(left)
            return self._sock.recv(size)
        except TimeoutError:
            self._log.warning(
                "closed a connection: the client did not send its request within %g s",
                self._seconds,
            )
            # Shut both directions now: gunicorn's graceful close would otherwise linger
            # (in its main loop) for the client to close first, which this one will not.
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
            raise NoMoreData() from None  # gunicorn closes the connection quietly
        finally:
            self._sock.settimeout(None)

    def __getattr__(self, name):
        return getattr(self._sock, name)


class _Captured:
    """Stands in for the client socket while gunicorn writes its HTML error page."""

    def __init__(self):
        self.data = b""

    def gettimeout(self):
        return 0.0

    def setblocking(self, _flag):
        pass

    def sendall(self, data: bytes) -> None:
        self.data += data

    def send(self, data: bytes) -> int:
        self.data += data
        return len(data)

    def status_line(self) -> str:
        first = self.data.split(b"\r\n", 1)[0].decode("latin-1")
        return first.partition(" ")[2] or "500 Internal Server Error"
