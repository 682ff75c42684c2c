"""OpenAIBackend against misbehaving loopback servers: a trickled response meets the per-attempt deadline, a
body cut short is retried, and a server that keeps failing is reported (never raised into the caller)."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest
from PIL import Image

from rlkit.rewards import OpenAIBackend
from rlkit.rewards.grm import DEFAULT_TEMPLATE

ANSWER = "<metrics>\n1. brighter\n</metrics>\n<score>7</score>"


def _ok_body() -> bytes:
    return json.dumps({"choices": [{"index": 0, "message": {"role": "assistant", "content": ANSWER}}]}).encode()


class RawServer:
    """A raw-socket HTTP server on 127.0.0.1; each connection takes the next behaviour from ``script``:
    "drip_body" (headers, then one body byte every ``every`` s), "drip_headers" (one header byte every
    ``every`` s), "cut" (Content-Length promises more than is sent, then the socket closes), "ok"."""

    def __init__(self, script: list[str], every: float = 0.0) -> None:
        self.script, self.every = list(script), every
        self.connections = 0
        self.stop = threading.Event()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.1)
        self.threads: list[threading.Thread] = []
        self.acceptor = threading.Thread(target=self._accept, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/v1"

    def __enter__(self) -> RawServer:
        self.acceptor.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.acceptor.join(5)
        for t in self.threads:
            t.join(5)
        self.sock.close()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            behaviour = self.script.pop(0) if self.script else "ok"
            self.connections += 1
            t = threading.Thread(target=self._serve, args=(conn, behaviour), daemon=True)
            self.threads.append(t)
            t.start()

    @staticmethod
    def _read_request(conn: socket.socket) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            data += conn.recv(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length"))
        while len(body) < length:
            body += conn.recv(65536)

    def _drip(self, conn: socket.socket, data: bytes) -> None:
        for i in range(len(data)):
            if self.stop.wait(self.every):
                return
            conn.sendall(data[i:i + 1])

    def _serve(self, conn: socket.socket, behaviour: str) -> None:
        conn.settimeout(10)
        body = _ok_body()
        try:
            self._read_request(conn)
            head = (f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                    "Connection: close\r\n\r\n").encode()
            if behaviour == "ok":
                conn.sendall(head + body)
            elif behaviour == "cut":
                conn.sendall(head + body[: len(body) // 2])
            elif behaviour == "drip_body":
                conn.sendall(head)
                self._drip(conn, body * 100)
            elif behaviour == "drip_headers":
                self._drip(conn, head + body)
        except OSError:
            pass  # the client hung up (as it should at its deadline)
        finally:
            conn.close()


def _request():
    img = Image.new("RGB", (32, 32), (120, 90, 60))
    return DEFAULT_TEMPLATE.messages("brighten", img, [img])


@pytest.mark.parametrize("behaviour", ["drip_body", "drip_headers"])
def test_trickling_server_meets_the_overall_deadline(behaviour):
    """A server sending one byte every timeout/3 kept timeout=0.8, max_retries=2 waiting 12.5 s (and
    forever with a longer body); each attempt now ends at its 0.8 s deadline: ~2.4 s plus backoff."""
    timeout, retries = 0.8, 2
    with RawServer([behaviour] * 3, every=timeout / 3) as srv:
        backend = OpenAIBackend(srv.url, "judge", timeout=timeout, max_retries=retries, backoff=0.01,
                                cache=False)
        t0 = time.monotonic()
        reply = backend.complete(_request())
        elapsed = time.monotonic() - t0
    assert reply.text is None
    assert "deadline" in reply.error and "gave up after 3 attempts" in reply.error
    assert reply.attempts == 3 and srv.connections == 3
    assert (retries + 1) * timeout - 0.1 <= elapsed < (retries + 1) * timeout + 1.5, elapsed


def test_body_cut_short_is_retried_then_succeeds(caplog):
    with RawServer(["cut", "ok"]) as srv:
        backend = OpenAIBackend(srv.url, "judge", timeout=5, max_retries=2, backoff=0.01, cache=False)
        reply = backend.complete(_request())
    assert reply.text == ANSWER and reply.attempts == 2
    assert backend.stats["retries"] == 1 and backend.stats["http_calls"] == 2
    assert "cut short" in caplog.text


def test_body_always_cut_short_is_reported_with_its_reason():
    with RawServer(["cut"] * 2) as srv:
        backend = OpenAIBackend(srv.url, "judge", timeout=5, max_retries=1, backoff=0.01, cache=False)
        reply = backend.complete(_request())
    assert reply.text is None and "cut short" in reply.error and "gave up after 2 attempts" in reply.error


def test_generate_over_a_batch_survives_a_dead_server():
    """Several requests against a server that trickles: every reply comes back as an error, none raises,
    and the batch ends within one deadline per attempt (requests run concurrently)."""
    with RawServer(["drip_body"] * 4, every=0.2) as srv:
        backend = OpenAIBackend(srv.url, "judge", timeout=0.6, max_retries=0, cache=False, max_concurrency=4)
        t0 = time.monotonic()
        replies = backend.generate([_request() for _ in range(4)])
        elapsed = time.monotonic() - t0
    assert [r.text for r in replies] == [None] * 4 and all("deadline" in r.error for r in replies)
    assert elapsed < 2.0, elapsed
