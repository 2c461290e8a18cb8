"""One DC-09 exchange with a receiver: send the message, wait for its one answer.
TCP (a connection per exchange, the answer read up to its CR) or UDP (one datagram
each way). The receiver's host goes through the outbound guard
(cloud/domain/outbound.py) at every exchange, exactly as a webhook's does: resolved
once, every address checked, the socket opened to the checked address."""
from __future__ import annotations

import socket
import time

from cloud.domain.outbound import OutboundHttp, Target, parse_target, resolve_checked

MAX_ANSWER = 1024


def host_target(http: OutboundHttp, host: str, port: int) -> Target:
    """The receiver's host and port, checked for form and allow-list as a URL's would be."""
    name = f"[{host}]" if ":" in host else host
    t = parse_target(f"https://{name}:{int(port)}/", http.policy)
    return Target("dc09", t.host, t.port, "")


def checked_ip(http: OutboundHttp, host: str, port: int) -> str:
    target = host_target(http, host, port)
    return resolve_checked(target, http.policy, http.resolver)[0]


def exchange(http: OutboundHttp, protocol: str, host: str, port: int, message: bytes, timeout_s: float) -> bytes:
    """The receiver's answer to ``message``; OSError (TimeoutError included) when none came."""
    ip = checked_ip(http, host, port)
    if protocol == "udp":
        family = socket.AF_INET6 if ":" in ip else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.settimeout(timeout_s)
            sock.connect((ip, port))  # only the receiver's datagrams are read
            sock.send(message)
            return sock.recv(MAX_ANSWER)
    deadline = time.monotonic() + timeout_s
    with http.connect(ip, port, timeout_s) as sock:
        sock.sendall(message)
        answer = b""
        while b"\r" not in answer and len(answer) < MAX_ANSWER:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = sock.recv(MAX_ANSWER)
            except TimeoutError:
                if answer:  # some receivers answer an unknown account with a bare '"NAK"', no CR
                    return answer
                raise
            if not chunk:
                raise ConnectionError("the receiver closed the connection without answering")
            answer += chunk
        return answer
