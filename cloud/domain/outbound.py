"""Calls the server makes to URLs that tenants and the platform configure (webhooks,
the SMS gateway), guarded against server-side request forgery.

A tenant admin chooses a webhook URL; without a guard the server would POST to
whatever it names: 127.0.0.1, the cloud metadata address 169.254.169.254, the
private network. So a URL must be https (http only with ``allow_http``, for tests),
its host must be on the allow-list when one is set, and every address it resolves
to must be public. The check runs when the URL is configured AND again at each
call: the host is resolved once, every address is checked, and the connection goes
to the checked address itself, never to the name again, so a DNS answer that
changes between check and connect (rebinding) gains nothing. Redirects are not
followed, every call has a timeout, and the answer read is capped.

The resolver and the connect function are ports (given when the guard is made), so
tests prove refusals with a resolver that answers 10.0.0.1 and a connect function
that records every attempt, without ever sending a packet there."""
from __future__ import annotations

import ipaddress
import json
import logging
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from http.client import HTTPConnection, HTTPResponse, HTTPSConnection
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from cloud import metrics
from cloud.domain.errors import Invalid

if TYPE_CHECKING:
    from cloud.settings import Settings

log = logging.getLogger("pers.outbound")

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]
Connect = Callable[[str, int, float], socket.socket]

# Not global though Python's is_global may miss them on older versions: CGNAT
# (RFC 6598) and the documented metadata address, named so the refusal is explicit.
_ALWAYS_REFUSED = (ipaddress.ip_network("100.64.0.0/10"), ipaddress.ip_network("169.254.0.0/16"),
                   ipaddress.ip_network("fd00:ec2::/32"))


class OutboundRefused(Invalid):
    """A URL or an address the server will not call; the message says why, plainly."""


def system_resolver(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for ``host`` (both families)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise OutboundRefused(f"{host} does not resolve ({exc.strerror})") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def tcp_connect(ip: str, port: int, timeout: float) -> socket.socket:
    return socket.create_connection((ip, port), timeout=timeout)


@dataclass(frozen=True)
class OutboundPolicy:
    allow_http: bool = False  # tests only: plain http to a local listener
    allow_loopback: bool = False  # tests only: 127.0.0.0/8 and ::1
    allow_hosts: tuple[str, ...] = ()  # when set, only these hosts ("hooks.example.org", "*.example.org")
    allow_networks: tuple[str, ...] = ()  # private networks the operator trusts, e.g. "10.20.0.0/24"
    timeout_s: float = 5.0
    max_response_bytes: int = 64 * 1024

    def networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [ipaddress.ip_network(n, strict=False) for n in self.allow_networks]


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str  # with the query


def parse_target(url: str, policy: OutboundPolicy) -> Target:
    """The URL's parts, if its form is acceptable (scheme, host, allow-list); no lookup."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise OutboundRefused("not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme != "https" and not (scheme == "http" and policy.allow_http):
        raise OutboundRefused("only https:// URLs are allowed")
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise OutboundRefused("the URL has no host")
    if _odd_ipv4(host):
        raise OutboundRefused(f"{host} is an IP address in an unusual form; refused")
    if parts.username or parts.password:
        raise OutboundRefused("credentials in the URL are not allowed (use the gateway token setting)")
    if policy.allow_hosts and not any(_host_matches(host, pat) for pat in policy.allow_hosts):
        raise OutboundRefused(f"{host} is not on the outbound allow-list")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(scheme, host, port or (443 if scheme == "https" else 80), path)


def _odd_ipv4(host: str) -> bool:
    """"0x7f000001", "2130706433", "127.1": the C resolver reads them as 127.0.0.1; only
    the canonical dotted quad is taken as an address (and then checked as one)."""
    try:
        socket.inet_aton(host)
    except OSError:
        return False
    try:
        return str(ipaddress.IPv4Address(host)) != host
    except ValueError:
        return True


def _host_matches(host: str, pattern: str) -> bool:
    pattern = pattern.strip().lower().rstrip(".")
    if pattern.startswith("*."):
        return host.endswith(pattern[1:])
    return host == pattern


def check_address(ip: str, policy: OutboundPolicy) -> IpAddress:
    """The address if the server may connect to it, else OutboundRefused."""
    addr = ipaddress.ip_address(ip.split("%", 1)[0])  # a scoped IPv6 literal carries %zone
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped  # ::ffff:10.0.0.1 is 10.0.0.1
    if any(addr in net for net in policy.networks()):
        return addr
    if addr.is_loopback and policy.allow_loopback:
        return addr
    if any(addr.version == net.version and addr in net for net in _ALWAYS_REFUSED):
        raise OutboundRefused(f"{ip} is a link-local or shared address; refused")
    if (not addr.is_global or addr.is_multicast or addr.is_reserved or addr.is_unspecified
            or addr.is_loopback or addr.is_link_local or addr.is_private):
        raise OutboundRefused(f"{ip} is not a public address; refused")
    return addr


def resolve_checked(target: Target, policy: OutboundPolicy, resolver: Resolver) -> list[str]:
    """Every address of the host, all of them checked: one bad address refuses the lot
    (an attacker's DNS would otherwise mix a public address with a private one)."""
    try:
        literal: IpAddress | None = ipaddress.ip_address(target.host.strip("[]"))
    except ValueError:
        literal = None
    ips = [str(literal)] if literal is not None else resolver(target.host, target.port)
    if not ips:
        raise OutboundRefused(f"{target.host} does not resolve")
    for ip in ips:
        check_address(ip, policy)
    return ips


class _PinnedHTTP(HTTPConnection):
    """http.client's connection to an address already checked, not to the name."""

    def __init__(self, host: str, port: int, ip: str, timeout: float, connect: Connect) -> None:
        super().__init__(host, port, timeout=timeout)
        self._ip, self._connect = ip, connect

    def connect(self) -> None:
        self.sock = self._connect(self._ip, self.port, self.timeout)  # type: ignore[arg-type]


class _PinnedHTTPS(HTTPSConnection):
    """TLS to the checked address; the certificate is verified against the host name (SNI)."""

    def __init__(self, host: str, port: int, ip: str, timeout: float, connect: Connect,
                 context: ssl.SSLContext) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self._ip, self._connect, self._ctx = ip, connect, context

    def connect(self) -> None:
        raw = self._connect(self._ip, self.port, self.timeout)  # type: ignore[arg-type]
        self.sock = self._ctx.wrap_socket(raw, server_hostname=self.host)


@dataclass
class OutboundHttp:
    """The one way the server calls a configured URL."""
    policy: OutboundPolicy = field(default_factory=OutboundPolicy)
    resolver: Resolver = system_resolver
    connect: Connect = tcp_connect
    tls: ssl.SSLContext | None = None  # default: the system's CAs, hostname checked

    def check_form(self, url: str) -> None:
        """The scheme, host and allow-list, with no lookup."""
        parse_target(url, self.policy)

    def validate(self, url: str) -> str:
        """At configuration time: the same checks as a call, without the call."""
        resolve_checked(parse_target(url, self.policy), self.policy, self.resolver)
        return url.strip()

    def post_json(self, url: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> str:
        try:
            target = parse_target(url, self.policy)
            ip = resolve_checked(target, self.policy, self.resolver)[0]
        except OutboundRefused:
            metrics.OUTBOUND_REFUSED.labels("call").inc()
            raise
        conn = self._connection(target, ip)
        try:
            conn.request("POST", target.path, body=json.dumps(body).encode(),
                         headers={"Content-Type": "application/json", **(headers or {})})
            return self._read(conn.getresponse())
        finally:
            conn.close()

    def _connection(self, target: Target, ip: str) -> HTTPConnection:
        timeout = self.policy.timeout_s
        if target.scheme == "https":
            return _PinnedHTTPS(target.host, target.port, ip, timeout, self.connect,
                                self.tls or ssl.create_default_context())
        return _PinnedHTTP(target.host, target.port, ip, timeout, self.connect)

    def _read(self, resp: HTTPResponse) -> str:
        cap = self.policy.max_response_bytes
        if 300 <= resp.status < 400:
            raise RuntimeError(f"HTTP {resp.status}: redirect not followed")
        declared = resp.getheader("Content-Length")
        if declared is not None and declared.isdigit() and int(declared) > cap:
            raise RuntimeError(f"HTTP {resp.status}: answer of {declared} bytes exceeds the {cap}-byte cap")
        if len(resp.read(cap + 1)) > cap:
            raise RuntimeError(f"HTTP {resp.status}: answer exceeds the {cap}-byte cap")
        if resp.status >= 400:
            raise RuntimeError(f"HTTP {resp.status}")
        return f"HTTP {resp.status}"


def outbound_from_settings(settings: Settings) -> OutboundHttp:
    """The guard as the settings configure it; a bad allowed network fails at start, loudly."""
    hosts = tuple(h.strip() for h in settings.outbound_allow_hosts.split(",") if h.strip())
    nets = tuple(n.strip() for n in settings.outbound_allow_networks.split(",") if n.strip())
    for n in nets:
        ipaddress.ip_network(n, strict=False)
    return OutboundHttp(OutboundPolicy(
        allow_http=settings.outbound_allow_http, allow_loopback=settings.outbound_allow_loopback,
        allow_hosts=hosts, allow_networks=nets, timeout_s=settings.notify_timeout_s,
        max_response_bytes=settings.outbound_max_response_bytes))


def checked_url(http: OutboundHttp, url: str, who: object) -> str:
    """A URL a tenant configures, validated, or a plain refusal that is logged and counted."""
    try:
        return http.validate(url)
    except OutboundRefused as exc:
        metrics.OUTBOUND_REFUSED.labels("validation").inc()
        log.warning("outbound URL refused", extra={"reason": str(exc), "by": getattr(who, "username", str(who))})
        raise
