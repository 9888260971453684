"""Remote attachments: the bytes behind a URL a client sent, fetched by the server only where a
provider needs bytes (docs/attachments.md), with SSRF protection.

The rules: ``https`` only (plain ``http`` only under ``ATTACHMENT_FETCH_ALLOW_LOOPBACK``, a switch
that only test code sets), no user name or password in the URL, any port. The host is resolved once
and *every* address it resolves to is checked (:func:`address_refusal`): private, loopback,
link-local, shared (CGNAT), unspecified, multicast, reserved, IPv4-mapped IPv6, 6to4 and Teredo
tunnel addresses, NAT64 forms of a refused IPv4 address and the cloud metadata addresses are
refused. The request then goes to an address that was checked (no second lookup, so DNS rebinding
cannot swap it), with the original ``Host`` header and TLS verified against the original host name
(SNI).
Redirects (at most :data:`MAX_REDIRECTS`) are followed here, each ``Location`` resolved and checked
the same way. Proxy variables (``HTTPS_PROXY`` …) and ``.netrc`` are ignored, cookies never sent.
The body is read raw (``Accept-Encoding: identity``) with a running size cap, and one deadline
bounds the whole fetch, lookups and redirects included.

Every refusal is a :class:`RemoteFetchRefused`: ``422 url_not_allowed`` (the URL or an address it
leads to is not fetched), ``422 fetch_failed`` (lookup, connection or upstream error, too many
redirects), ``422 fetch_timeout`` (the deadline passed: 422 rather than 504, since the URL is the
client's input, not a gateway of ours failing) and ``413 payload_too_large``.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from typing import Any

import httpx
from django.conf import settings

MAX_REDIRECTS = 5
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
INSTEAD = "send the file's bytes instead (a data URL or an upload)"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Cloud metadata services (AWS, GCP, Azure, OpenStack…; AWS over IPv6; Alibaba Cloud).
METADATA = frozenset(ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200"))
CGNAT = ipaddress.ip_network("100.64.0.0/10")
NAT64 = ipaddress.ip_network("64:ff9b::/96")
# Not globally routable, stated here so the rule does not depend on the Python version's
# ``is_global`` (which changed in 3.11.10 / 3.12.4); the ``ipaddress`` predicates are checked too.
NOT_ROUTABLE = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "198.18.0.0/15",
        "198.51.100.0/24", "203.0.113.0/24", "240.0.0.0/4",
        "::/96", "64:ff9b:1::/48", "100::/64", "2001::/23", "2001:db8::/32", "fec0::/10",
    )
)  # fmt: skip


class RemoteFetchRefused(Exception):
    """A remote attachment the server will not or could not fetch: ``status`` (4xx), ``code``
    (``url_not_allowed``, ``fetch_failed``, ``payload_too_large``, ``fetch_timeout``) and a
    ``message`` naming the URL's host and the fix. ``details`` is empty (so the HTTP kit's
    ``error_response`` renders it as is)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.details: dict[str, Any] = {}


@dataclass(frozen=True)
class RemoteFile:
    data: bytes
    content_type: str | None  # the response's Content-Type (informational: the caller sniffs the bytes)
    final_url: str


def address_refusal(address: IPAddress, *, allow_loopback: bool = False) -> str | None:
    """Why the server does not connect to ``address`` ("a private address" …), or None when it is
    globally routable. ``allow_loopback`` (the test switch) lets 127.0.0.0/8 and ::1 through, and
    nothing else: never a private, link-local, metadata or mapped address."""
    if address in METADATA:
        return "a cloud metadata address"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return "an IPv4-mapped IPv6 address"
        if address.teredo is not None or address.sixtofour is not None:
            return "an IPv6 tunnel address (Teredo or 6to4)"
        if address in NAT64:  # DNS64: an IPv4 host seen from an IPv6-only network, checked as that host
            reason = address_refusal(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
            return f"{reason} behind a NAT64 prefix" if reason else None
    if address.is_loopback:
        return None if allow_loopback else "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address in CGNAT:
        return "a shared (CGNAT) address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_private:
        return "a private address"
    if address.is_reserved or not address.is_global or any(address in n for n in NOT_ROUTABLE):
        return "a reserved address"
    return None


async def fetch_remote(
    url: str,
    *,
    max_bytes: int | None = None,
    timeout: float | None = None,  # noqa: ASYNC109 (the caller's deadline, applied with asyncio.timeout)
) -> RemoteFile:
    """The bytes at ``url`` (at most ``max_bytes``, default ``ATTACHMENT_MAX_BYTES``) within
    ``timeout`` seconds in all (default ``ATTACHMENT_FETCH_TIMEOUT_SECONDS``), under the rules of
    this module, or :class:`RemoteFetchRefused`."""
    max_bytes = settings.ATTACHMENT_MAX_BYTES if max_bytes is None else max_bytes
    timeout = settings.ATTACHMENT_FETCH_TIMEOUT_SECONDS if timeout is None else timeout
    try:
        current = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise RemoteFetchRefused(
            422,
            "url_not_allowed",
            f"The attachment URL is not a valid URL ({exc}): send an https URL, or {INSTEAD}.",
        ) from None
    first_host = current.host
    try:
        async with asyncio.timeout(timeout), _client(timeout) as client:
            for _hop in range(MAX_REDIRECTS + 1):
                addresses = await _checked_addresses(current, first_host)
                response = await _send(client, current, addresses, first_host)
                try:
                    location = response.headers.get("location")
                    if response.status_code in REDIRECT_STATUSES and location:
                        current = current.join(location)  # httpx has checked it
                        continue
                    return await _body(response, current, first_host, max_bytes)
                finally:
                    await response.aclose()
    except (TimeoutError, httpx.TimeoutException):
        raise RemoteFetchRefused(
            422,
            "fetch_timeout",
            f"Fetching the attachment from {_named(current, first_host)} took longer than {timeout:g} s: "
            f"{INSTEAD}.",
        ) from None
    raise RemoteFetchRefused(
        422,
        "fetch_failed",
        f"The attachment URL's host {first_host} redirected more than {MAX_REDIRECTS} times: "
        f"send the final URL, or {INSTEAD}.",
    )


def _named(url: httpx.URL, first_host: str) -> str:
    """The host a message names: the URL's, and the one the client sent when a redirect led here."""
    if url.host == first_host:
        return url.host or "(none)"
    return f"{url.host or '(none)'} (reached by a redirect from {first_host})"


def _refused(url: httpx.URL, first_host: str, problem: str) -> RemoteFetchRefused:
    return RemoteFetchRefused(
        422, "url_not_allowed", f"The attachment URL's host {_named(url, first_host)} {problem}: {INSTEAD}."
    )


async def _checked_addresses(url: httpx.URL, first_host: str) -> list[IPAddress]:
    """Every address ``url``'s host resolves to, each checked, in the resolver's order."""
    allow_loopback = settings.ATTACHMENT_FETCH_ALLOW_LOOPBACK is True
    if url.scheme != "https" and not (url.scheme == "http" and allow_loopback):
        raise _refused(url, first_host, f"is reached over {url.scheme or 'no scheme'}, not https")
    if not url.host:
        raise _refused(url, first_host, "is empty")
    if url.userinfo:
        raise _refused(url, first_host, "comes with a user name or password, which the server does not send")
    port = url.port or (443 if url.scheme == "https" else 80)
    if not 0 < port < 65536:
        raise _refused(url, first_host, f"comes with port {port}, which is not a TCP port")
    try:
        addresses = [ipaddress.ip_address(url.host)]
    except ValueError:
        addresses = await _resolve(url, first_host, port)
    for address in addresses:
        if reason := address_refusal(address, allow_loopback=allow_loopback):
            raise _refused(
                url, first_host, f"resolves to {reason} ({address}), which the server does not fetch from"
            )
        if url.scheme == "http" and not address.is_loopback:
            raise _refused(url, first_host, "is reached over http, not https")
    return addresses


async def _resolve(url: httpx.URL, first_host: str, port: int) -> list[IPAddress]:
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            url.raw_host.decode("ascii"), port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
    except (OSError, UnicodeError) as exc:
        raise RemoteFetchRefused(
            422,
            "fetch_failed",
            f"The attachment URL's host {_named(url, first_host)} could not be resolved ({exc}): "
            f"check the URL, or {INSTEAD}.",
        ) from None
    addresses: list[IPAddress] = []
    for *_, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]))
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise RemoteFetchRefused(
            422,
            "fetch_failed",
            f"The attachment URL's host {_named(url, first_host)} has no address: {INSTEAD}.",
        )
    return addresses


@functools.cache
def _tls() -> ssl.SSLContext:
    return httpx.create_ssl_context(trust_env=False)  # certifi's store, made once (it takes milliseconds)


def _client(timeout: float) -> httpx.AsyncClient:
    # trust_env=False: no HTTP(S)_PROXY / ALL_PROXY, no .netrc, no SSL_CERT_FILE from the environment.
    return httpx.AsyncClient(
        trust_env=False, follow_redirects=False, verify=_tls(), timeout=timeout, http1=True, http2=False
    )


async def _send(
    client: httpx.AsyncClient, url: httpx.URL, addresses: list[IPAddress], first_host: str
) -> httpx.Response:
    """GET ``url`` from the first of its checked ``addresses`` that accepts a connection."""
    host = url.raw_host.decode("ascii")  # IDNA-encoded, as the Host header and the certificate say it
    literal = _is_ip(host)  # an IP in the URL: TLS checks the certificate against it, without SNI
    error: Exception | None = None
    for address in addresses:
        # A Request built here, not by the client: the client's cookies are never merged into it.
        request = httpx.Request(
            "GET",
            url.copy_with(host=str(address), fragment=None),
            headers={
                "Host": url.netloc.decode("ascii"),
                "Accept": "*/*",
                "Accept-Encoding": "identity",
                "User-Agent": "chatproject-attachment-fetch",
            },
            extensions={"timeout": client.timeout.as_dict(), **({} if literal else {"sni_hostname": host})},
        )
        try:
            return await client.send(request, stream=True)
        except httpx.ConnectError as exc:  # the next address, if the host has several
            error = exc
        except httpx.TimeoutException:
            raise
        except httpx.HTTPError as exc:
            error = exc
            break
    raise RemoteFetchRefused(
        422,
        "fetch_failed",
        f"The attachment could not be fetched from {_named(url, first_host)} ({type(error).__name__}: {error}): "
        f"check the URL, or {INSTEAD}.",
    )


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


async def _body(response: httpx.Response, url: httpx.URL, first_host: str, max_bytes: int) -> RemoteFile:
    """The body of a final (non-redirect) answer, read with the size cap."""
    named = _named(url, first_host)
    if not 200 <= response.status_code < 300:
        raise RemoteFetchRefused(
            422,
            "fetch_failed",
            f"The attachment URL's host {named} answered HTTP {response.status_code}: check the URL, "
            f"or {INSTEAD}.",
        )
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise RemoteFetchRefused(
            422,
            "fetch_failed",
            f"The attachment URL's host {named} sent its file compressed ({encoding}) though it was asked "
            f"not to: {INSTEAD}.",
        )
    declared = response.headers.get("content-length", "")
    if declared.strip().isdigit() and int(declared) > max_bytes:
        raise _too_large(named, max_bytes)
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in response.aiter_raw():
            size += len(chunk)
            if size > max_bytes:
                chunks.clear()  # not kept alive by the refusal's traceback
                raise _too_large(named, max_bytes)
            chunks.append(chunk)
    except httpx.TimeoutException:
        raise
    except httpx.HTTPError as exc:
        raise RemoteFetchRefused(
            422,
            "fetch_failed",
            f"The attachment's download from {named} broke off ({type(exc).__name__}: {exc}): "
            f"check the URL, or {INSTEAD}.",
        ) from None
    return RemoteFile(
        data=b"".join(chunks), content_type=response.headers.get("content-type"), final_url=str(url)
    )


def _too_large(named: str, max_bytes: int) -> RemoteFetchRefused:
    return RemoteFetchRefused(
        413,
        "payload_too_large",
        f"The attachment at {named} is larger than {max_bytes} bytes (the server's limit): send a smaller file.",
    )
