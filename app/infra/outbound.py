"""Outbound HTTP to addresses an operator allows: the webhook sender's only way out.

A webhook URL is chosen by whoever holds an API key (or a dashboard login), so without a
check it could make the server call its own loopback, the private network or the cloud's
metadata service (server-side request forgery). Here a destination's host is resolved at
send time, every address is judged (``AddressPolicy``), and the request goes to the
address that was judged, with the URL's host name in ``Host`` and in TLS (SNI and the
certificate check): there is no second DNS lookup for an attacker's name to answer
differently. Redirects are never followed, environment proxies never used, and at most
``EXCERPT_BYTES`` of an answer are read.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import httpx

EXCERPT_BYTES = 1024  # of a response body, kept in the delivery log
USER_AGENT = "Waitpoint-Webhooks/1 (+https://www.standardwebhooks.com/)"

# Cloud metadata services: refused even with WAITPOINT_WEBHOOK_ALLOW_PRIVATE=on, unless a
# network in its list contains them (AWS, GCP and Azure; AWS IPv6; ECS tasks; Alibaba; Oracle).
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",
        "fd00:ec2::254",
        "169.254.170.2",
        "100.100.100.200",
        "192.0.0.192",
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class Refused(Exception):
    """The destination is not allowed; the message says why (and what allows it)."""


def _embedded_v4(address):
    """The IPv4 address an IPv6 one stands for (mapped, NAT64, 6to4), else itself."""
    if address.version == 6:
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if address.sixtofour is not None:
            return address.sixtofour
    return address


def kind_of(address) -> str | None:
    """Why an address is not public (``loopback``, ``private``...), or None if it is."""
    address = _embedded_v4(address)
    if address in METADATA_ADDRESSES:
        return "cloud metadata"
    if address.is_loopback:
        return "loopback"
    if address.is_unspecified:
        return "unspecified"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if address.version == 6 and address in ipaddress.ip_network("fc00::/7"):
        return "unique-local"
    if address.is_private or not address.is_global or address.is_reserved:
        return "private"
    return None


@dataclass(frozen=True)
class AddressPolicy:
    """``WAITPOINT_WEBHOOK_ALLOW_PRIVATE``: False (public addresses only), True (any but
    cloud metadata), or networks and host names allowed besides public addresses."""

    setting: bool | tuple[str, ...] = False

    def refusal(self, host: str, address) -> str | None:
        """None if ``address`` (what ``host`` resolved to) may be called, else why not."""
        kind = kind_of(address)
        if kind is None:
            return None
        plain = _embedded_v4(address)
        if isinstance(self.setting, tuple):
            for entry in self.setting:
                if "/" in entry:
                    network = ipaddress.ip_network(entry)
                    if address in network or plain in network:
                        return None
                elif entry == host.lower() and kind != "cloud metadata":
                    return None
        elif self.setting is True and kind != "cloud metadata":
            return None
        named = host if host == str(address) else f"{host} resolves to {address},"
        return f"refused: {named} a {kind} address (WAITPOINT_WEBHOOK_ALLOW_PRIVATE can allow it)"


def resolve(host: str, port: int, policy: AddressPolicy) -> str:
    """The first address of ``host`` the policy allows; ``Refused`` if none is."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise ConnectionError(f"cannot resolve {host}: {exc}") from None
    first_refusal = None
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%", 1)[0])
        why = policy.refusal(host, address)
        if why is None:
            return str(address)
        first_refusal = first_refusal or why
    raise Refused(first_refusal or f"refused: {host} has no address")


@dataclass
class Answer:
    """What came back: a status and the first bytes, or an error (and its kind)."""

    status_code: int | None = None
    excerpt: str | None = None
    error: str | None = None
    kind: str = "success"  # success | http_error | timeout | connection_error | refused
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.kind == "success"


class Sender:
    """Posts to checked addresses; one per thread of sending, its connections kept for the
    same host name (never shared between names, which may share an address)."""

    def __init__(self, policy: AddressPolicy, timeout: float):
        self.policy = policy
        self.timeout = timeout
        self._clients: dict[tuple[str, str], httpx.Client] = {}

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> Answer:
        started = time.perf_counter()
        answer = self._post(url, body, headers, started + self.timeout)
        answer.seconds = time.perf_counter() - started
        return answer

    def _post(self, url: str, body: bytes, headers: dict[str, str], deadline: float) -> Answer:
        parts = urlsplit(url)
        host = parts.hostname or ""
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
            address = resolve(host, port, self.policy)
        except Refused as exc:
            return Answer(error=str(exc), kind="refused")
        except (ConnectionError, ValueError) as exc:  # ValueError: a port out of range
            return Answer(error=str(exc), kind="connection_error")
        literal = f"[{address}]" if ":" in address else address
        target = urlunsplit((parts.scheme, f"{literal}:{port}", parts.path or "/", parts.query, ""))
        name = f"[{host}]" if ":" in host else host
        default_port = port == (443 if parts.scheme == "https" else 80)
        host_header = name if default_port else f"{name}:{port}"
        extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
        request_headers = {
            **headers,
            "Host": host_header,
            "User-Agent": USER_AGENT,
            "Content-Type": "application/json",
            # Raw bytes only: a compressed answer could inflate past any limit.
            "Accept-Encoding": "identity",
        }
        client = self._client(parts.scheme, host)
        try:
            request = client.build_request(
                "POST", target, content=body, headers=request_headers, extensions=extensions
            )
            response = client.send(request, stream=True)
            try:
                excerpt = _read_some(response, deadline)
            finally:
                response.close()
        except httpx.TimeoutException:
            return Answer(error=f"timed out after {self.timeout:g} s", kind="timeout")
        except httpx.HTTPError as exc:
            return Answer(error=_describe(exc), kind="connection_error")
        if 200 <= response.status_code < 300:
            return Answer(response.status_code, excerpt)
        error = f"HTTP {response.status_code}"
        if 300 <= response.status_code < 400:
            error += ": redirects are not followed"
        return Answer(response.status_code, excerpt, error, kind="http_error")

    def _client(self, scheme: str, host: str) -> httpx.Client:
        client = self._clients.get((scheme, host))
        if client is None:
            client = httpx.Client(
                timeout=self.timeout, follow_redirects=False, trust_env=False, http2=False
            )
            self._clients[(scheme, host)] = client
        return client

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()


def _read_some(response: httpx.Response, deadline: float) -> str:
    """Up to ``EXCERPT_BYTES`` of the body, within the time left."""
    data = b""
    for chunk in response.iter_raw():
        data += chunk
        if len(data) >= EXCERPT_BYTES:
            break
        if time.perf_counter() > deadline:
            raise httpx.ReadTimeout("the whole answer took too long")
    return data[:EXCERPT_BYTES].decode("utf-8", errors="replace")


def _describe(exc: httpx.HTTPError) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:300]


def split_host(url: str) -> str:
    """``scheme://host[:port]`` of a URL: what logs may show of it (a path may hold a secret)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], "", "", ""))
