"""Request bodies are exactly what the client declared, whatever the framing.

werkzeug reads a body only up to the request's size limit and stops there without a
word, and trusts the server to have framed it. Behind gunicorn that lost data twice:
a chunked body over the limit arrived cut at the limit (a callback then completed its
token with ``{}``), and a body shorter than its ``Content-Length`` (the client gave up
half way) was read as if it were whole. This WSGI middleware closes both:

- a body with a ``Content-Length`` must deliver that many bytes: reading past an early
  end raises a 400, so nothing is decided on a truncated body;
- a chunked body is read here, up to the largest size any route accepts plus one byte,
  and handed on as a body with a ``Content-Length``: over the limit, werkzeug answers 413 as it
  does for a declared length (routes with lower limits too); a malformed chunk is a 400
  when the route reads the body.
"""

from __future__ import annotations

import io

from werkzeug.exceptions import BadRequest

_READ_SIZE = 64 * 1024


class StrictRequestBody:
    def __init__(self, wsgi_app, max_bytes: int):
        self.wsgi_app = wsgi_app
        self.max_bytes = max_bytes

    def __call__(self, environ, start_response):
        stream = environ.get("wsgi.input")
        length = environ.get("CONTENT_LENGTH", "")
        if stream is not None and length.isdigit() and int(length) > 0:
            environ["wsgi.input"] = ExactLength(stream, int(length))
        elif stream is not None and not length and _server_frames_body(environ):
            environ["wsgi.input"], environ["CONTENT_LENGTH"] = self._buffer(stream)
            # Framed by its length now (werkzeug ignores the length of a chunked body).
            environ.pop("HTTP_TRANSFER_ENCODING", None)
        return self.wsgi_app(environ, start_response)

    def _buffer(self, stream) -> tuple[io.RawIOBase, str]:
        """The whole chunked body (at most one byte past the limit), or a stream that
        fails with the reason when it is read."""
        body = bytearray()
        try:
            while len(body) <= self.max_bytes:
                chunk = stream.read(min(_READ_SIZE, self.max_bytes + 1 - len(body)))
                if not chunk:
                    break
                body += chunk
        except Exception as exc:  # gunicorn's parse errors, a reset connection
            failure = BadRequest(f"body: malformed chunked encoding ({type(exc).__name__})")
            return Failing(failure), "1"
        # Over the limit the length says so, and werkzeug refuses it before reading.
        return io.BytesIO(bytes(body)), str(len(body))


def _server_frames_body(environ) -> bool:
    """A body without a length that the server ends itself: chunked. (gunicorn drops the
    Transfer-Encoding header from the environ but marks the stream as terminated; for a
    request without a body it reads as empty at once.)"""
    return (
        "wsgi.input_terminated" in environ
        or "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
    )


class ExactLength(io.RawIOBase):
    """The body stream, failing with a 400 if it ends before its declared length."""

    def __init__(self, stream, length: int):
        self._stream = stream
        self._length = length
        self._read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        want = min(len(buffer), self._length - self._read)
        if want <= 0:
            return 0
        try:
            data = self._stream.read(want)
        except OSError:
            data = b""  # the connection broke: the same as an early end
        if not data:
            raise BadRequest(
                f"body: the request ended after {self._read} of the {self._length} bytes"
                " its Content-Length declares"
            )
        buffer[: len(data)] = data
        self._read += len(data)
        return len(data)


class Failing(io.RawIOBase):
    """A body that could not be read: raises the reason when the route reads it."""

    def __init__(self, error: Exception):
        self._error = error

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        raise self._error
