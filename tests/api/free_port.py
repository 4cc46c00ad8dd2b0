# SPDX-License-Identifier: MIT
"""A free loopback port for a test server to listen on, picked below the kernel's
ephemeral range (net.ipv4.ip_local_port_range).  A port the kernel hands out for
bind(0) comes from that range, and so does the source port of every outgoing
connection: with suites running four at a time, one of their connections could take
such a port between the check and the server's own bind ("already in use").

Below the range only another picker can take it: the pytest workers and the shell
runners all pick here, at random, and two picks of one port in the same second (before
either server bound it) once made a test talk to another test's server.  So every pick
is written down in a file all pickers share (under a lock), and a port picked in the
last two minutes is not picked again.

Run as a script it prints one port, for the shell runners."""
import fcntl
import random
import socket
import time

_REGISTRY = "/tmp/qun-test-ports"  # not $TMPDIR: each pytest process has its own
_REMEMBER = 120  # seconds a picked port stays reserved


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _bindable(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return 0
        return s.getsockname()[1]


def free_port():
    low = _ephemeral_low()
    first = max(10000, low - 16000)
    if first >= low:  # a range that starts very low: fall back on the kernel's pick
        return _bindable(0)
    with open(_REGISTRY, "a+") as reg:
        fcntl.flock(reg, fcntl.LOCK_EX)  # released when the file closes
        reg.seek(0)
        now = time.time()
        recent = {}
        for line in reg.read().split("\n"):
            parts = line.split()
            if len(parts) == 2 and parts[0].isdigit():
                try:
                    if now - float(parts[1]) < _REMEMBER:
                        recent[int(parts[0])] = parts[1]
                except ValueError:
                    pass
        for _ in range(500):
            port = random.randrange(first, low)
            if port in recent or not _bindable(port):
                continue
            recent[port] = f"{now:.3f}"
            reg.seek(0)
            reg.truncate()
            reg.write("".join(f"{p} {t}\n" for p, t in recent.items()))
            reg.flush()
            return port
    raise RuntimeError("no free loopback port below the ephemeral range")


if __name__ == "__main__":
    print(free_port())
