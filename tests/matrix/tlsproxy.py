# SPDX-License-Identifier: MIT
"""A TLS-terminating proxy on loopback for clients that speak only HTTPS (weechat-matrix
0.3), standing where an operator's reverse proxy stands: TLS in, plain HTTP to qund.
The certificate is a fresh self-signed one made by the openssl tool."""
import asyncio
import os
import re
import ssl
import subprocess
import threading


def self_signed(directory):
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-keyout", key, "-out", cert],
                   check=True, capture_output=True)
    return cert, key


_HEAD = re.compile(rb"^(?:(?:GET|POST|PUT|DELETE|OPTIONS) \S+|HTTP/1\.1 \d{3}) ", re.M)


class TlsProxy:
    def __init__(self, directory, target_port):
        cert, key = self_signed(directory)
        self.ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ctx.load_cert_chain(cert, key)
        self.ctx.set_alpn_protocols(["http/1.1"])
        self.target = target_port
        self.trace = []  # request and status lines seen, for a failing test's message
        self.port = None  # the kernel's pick, read from the listening socket: no race
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self.thread.start()
        ready.wait(10)

    async def _pipe(self, reader, writer):
        try:
            while data := await reader.read(65536):
                self.trace += [m.decode("latin-1") for m in _HEAD.findall(data)]
                writer.write(data)
                await writer.drain()
        except (ConnectionError, ssl.SSLError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _client(self, reader, writer):
        try:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            writer.close()
            return
        await asyncio.gather(self._pipe(reader, up_w), self._pipe(up_r, writer))

    def _run(self, ready):
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(
            asyncio.start_server(self._client, "127.0.0.1", 0, ssl=self.ctx))
        self.port = self.server.sockets[0].getsockname()[1]
        ready.set()
        self.loop.run_forever()

    def close(self):
        def stop():
            self.server.close()
            self.loop.stop()
        self.loop.call_soon_threadsafe(stop)
        self.thread.join(5)
