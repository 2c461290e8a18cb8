"""Listening ports for the servers that tests and benches start on loopback.

A port found with bind(0) comes from the kernel's ephemeral range, and it is
free only until the socket closes: before the server binds it, any outgoing
connection (a twin, the fault proxy, a paho client) may be given the same port.
CI once lost a run to exactly that (errno 98 on the HTTP port). So servers get
ports below the ephemeral range, where the kernel never hands out client ports,
picked at random so that parallel processes rarely try the same one, and never
twice in one process.
"""
from __future__ import annotations

import os
import random
import socket
import time

_LOWEST = 10_000


def _ephemeral_start() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768  # Linux's default


_HIGHEST = _ephemeral_start()  # exclusive
_handed_out: set[int] = set()
_pick = random.Random(os.getpid() ^ time.time_ns())


def _bindable(port: int) -> bool:
    # No SO_REUSEADDR: a port still in TIME_WAIT counts as taken, which is the safe answer.
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    if _HIGHEST - _LOWEST >= 1_000:
        for _ in range(2_000):
            port = _pick.randrange(_LOWEST, _HIGHEST)
            if port not in _handed_out and _bindable(port):
                _handed_out.add(port)
                return port
    # A machine with an unusual ephemeral range: fall back to the kernel's choice.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
