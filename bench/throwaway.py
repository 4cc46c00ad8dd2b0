# SPDX-License-Identifier: MIT
"""A throwaway qund for a benchmark script: a temporary data directory, a free loopback
port, ready when /readyz answers, and stopped (then killed if it must be) and removed on
the way out, whatever happened.

    with throwaway.qund(path, ["--threads", "2", ...], "fanout") as (url, tmp):
        ...   # tmp: the temporary directory, for the script's own files too
"""
import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time

import requests


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def qund(path, args, name="bench"):
    tmp = tempfile.mkdtemp(prefix=f"qund-{name}-")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(os.path.join(tmp, "qund.log"), "wb")
    proc = subprocess.Popen([path, "--listen", f"127.0.0.1:{port}", "--data", os.path.join(tmp, "data")] + args,
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(300):
            try:
                if requests.get(url + "/readyz", timeout=0.5).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.05)
        yield url, tmp
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)
