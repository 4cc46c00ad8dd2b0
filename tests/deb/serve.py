# SPDX-License-Identifier: MIT
"""Run the packaged qund as its service manager would, for tests/deb/run.sh: with a
NOTIFY_SOCKET (a unix datagram socket bound here) and WATCHDOG_USEC, wait for READY=1,
check the console and a registration, reload on SIGHUP, stop it by its PID with TERM and
wait for STOPPING=1 and exit 0.  Usage: serve.py PORT QUND_ARGV..."""
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request


def wait_for(sock, word, seconds):
    got, deadline = [], time.time() + seconds
    while time.time() < deadline:
        sock.settimeout(max(0.05, deadline - time.time()))
        try:
            got.append(sock.recv(4096).decode())
        except socket.timeout:
            break
        if any(word in m for m in got):
            return got
    sys.exit(f"serve.py: no {word} from qund in {seconds} s; got {got}")


def call(url, body=None):
    req = urllib.request.Request(url, data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.status, r.read()


def main():
    port, argv = sys.argv[1], sys.argv[2:]
    base = f"http://127.0.0.1:{port}"
    tmp = tempfile.mkdtemp(prefix="qun-notify-")
    path = os.path.join(tmp, "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    os.chmod(tmp, 0o755)
    os.chmod(path, 0o777)  # qund may run as the package's qun user
    env = dict(os.environ, NOTIFY_SOCKET=path, WATCHDOG_USEC="2000000")
    qund = subprocess.Popen(argv, env=env)
    try:
        wait_for(sock, "READY=1", 30)
        print(f"serve.py: READY=1 from qund (pid {qund.pid})")
        status, page = call(base + "/")
        assert status == 200 and b"<html" in page.lower(), (status, page[:200])
        status, _ = call(base + "/v1/users", {"username": "debtest", "password": "correct horse battery"})
        assert status == 201, status
        print("serve.py: the console answers GET / and a user registered")
        wait_for(sock, "WATCHDOG=1", 5)
        print("serve.py: WATCHDOG=1 within 5 s (WATCHDOG_USEC=2 s)")
        qund.send_signal(signal.SIGHUP)
        wait_for(sock, "RELOADING=1", 5)
        wait_for(sock, "READY=1", 5)
        print("serve.py: SIGHUP: RELOADING=1 then READY=1")
        os.kill(qund.pid, signal.SIGTERM)
        wait_for(sock, "STOPPING=1", 10)
        rc = qund.wait(timeout=30)
        assert rc == 0, f"qund exited {rc}"
        print("serve.py: TERM: STOPPING=1, exit 0")
    finally:
        if qund.poll() is None:
            qund.kill()
            qund.wait()
        sock.close()
        os.unlink(path)
        os.rmdir(tmp)


if __name__ == "__main__":
    main()
