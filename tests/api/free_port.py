# SPDX-License-Identifier: MIT
"""A free loopback port for a test server to listen on, picked below the kernel's
ephemeral range (net.ipv4.ip_local_port_range).  A port the kernel hands out for
bind(0) comes from that range, and so does the source port of every outgoing
connection: with suites running four at a time, one of their connections could take
such a port between the check and the server's own bind ("already in use").  Below
the range only another picker can take it, and picks are random.

Run as a script it prints one port, for the shell runners."""
import random
import socket


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port():
    low = _ephemeral_low()
    first = max(10000, low - 16000)
    if first >= low:  # a range that starts very low: fall back on the kernel's pick
        first, low = None, None
    for _ in range(200):
        port = random.randrange(first, low) if first else 0
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise RuntimeError("no free loopback port below the ephemeral range")


if __name__ == "__main__":
    print(free_port())
