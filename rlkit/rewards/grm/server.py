"""A small OpenAI-compatible chat server for a local judge (tests, CI, laptops without vLLM).

``GRMServer(answer_fn)`` serves ``POST /v1/chat/completions`` and ``GET /v1/models`` on 127.0.0.1.
``answer_fn(messages) -> str`` receives the request's messages with ``image_url`` data URLs decoded to
``{"type": "image", "image": PIL.Image}`` blocks. :func:`transformers_answer_fn` answers with a local
transformers VLM. For production use ``vllm serve`` and point :class:`OpenAIBackend` at it.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from PIL import Image

from rlkit.rewards.grm.backends import GRMBackend, TransformersBackend
from rlkit.rewards.grm.prompt import map_content_blocks

logger = logging.getLogger("rlkit.rewards.grm")

__all__ = ["GRMServer", "transformers_answer_fn", "decode_messages"]

_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def decode_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """OpenAI-style messages -> HF-style: ``image_url`` data URLs become PIL images."""

    def decode(b: dict[str, Any]) -> dict[str, Any]:
        if b.get("type") != "image_url":
            return b
        url = b["image_url"]["url"] if isinstance(b.get("image_url"), dict) else b.get("image_url")
        if not isinstance(url, str) or not url.startswith("data:") or "," not in url:
            raise ValueError("only base64 data: URLs are accepted for images")
        raw = base64.b64decode(url.split(",", 1)[1])
        return {"type": "image", "image": Image.open(io.BytesIO(raw)).convert("RGB")}

    return map_content_blocks(messages, decode)


class GRMServer:
    """Threaded OpenAI-compatible server on a loopback address; use as a context manager.

    ``port=0`` picks a free port (see :attr:`base_url`). Exceptions in ``answer_fn`` become HTTP 500.
    :meth:`stop` returns once every in-flight request has finished.
    """

    def __init__(self, answer_fn: Callable[[list[dict[str, Any]]], str], *, host: str = "127.0.0.1",
                 port: int = 0, model_name: str = "rlkit-grm") -> None:
        if host not in _LOOPBACK:
            raise ValueError(f"GRMServer binds loopback addresses only ({_LOOPBACK}), got {host!r}")
        self.answer_fn, self.model_name = answer_fn, model_name
        self._httpd = ThreadingHTTPServer((host, port), self._handler())
        # stop() waits for in-flight requests (a request abandoned by a timed-out client may still be
        # generating; letting it run on into interpreter shutdown would crash the process)
        self._httpd.daemon_threads = False
        self._httpd.block_on_close = True
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, fmt: str, *args: Any) -> None:
                logger.debug("GRMServer: " + fmt, *args)

            def _send(self, code: int, obj: Any) -> None:
                data = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def do_GET(self) -> None:  # noqa: N802 - http.server API
                if self.path.rstrip("/") == "/v1/models":
                    self._send(200, {"object": "list", "data": [{"id": server.model_name, "object": "model"}]})
                else:
                    self._send(404, {"error": {"message": f"no route {self.path}"}})

            def do_POST(self) -> None:  # noqa: N802 - http.server API
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._send(404, {"error": {"message": f"no route {self.path}"}})
                    return
                try:
                    length = int(self.headers.get("Content-Length", "0"))
                    body = json.loads(self.rfile.read(length))
                    messages = decode_messages(body["messages"])
                except (ValueError, KeyError, TypeError) as exc:
                    self._send(400, {"error": {"message": f"bad request: {exc}"}})
                    return
                try:
                    text = server.answer_fn(messages)
                except Exception as exc:  # noqa: BLE001 - reported to the client as a 500
                    logger.warning("GRMServer: answer failed: %s", exc)
                    self._send(500, {"error": {"message": f"{type(exc).__name__}: {exc}"}})
                    return
                self._send(200, {
                    "id": f"chatcmpl-{time.time_ns()}", "object": "chat.completion", "created": int(time.time()),
                    "model": body.get("model", server.model_name),
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": text}}],
                })

        return Handler

    def start(self) -> GRMServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="GRMServer", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def serve_forever(self) -> None:
        try:
            self._httpd.serve_forever()
        finally:
            self._httpd.server_close()

    def __enter__(self) -> GRMServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def transformers_answer_fn(model: Any, *, max_new_tokens: int = 256, device: str = "cpu") -> Callable:
    """``answer_fn`` answering with a local VLM (greedy): ``model`` is a model path or hub id, or an already
    built backend (e.g. a :class:`TransformersBackend` holding a loaded model or LoRA adapter)."""
    backend = model if isinstance(model, GRMBackend) else TransformersBackend(
        model, device=device, max_new_tokens=max_new_tokens, batch_size=1)

    def answer(messages: list[dict[str, Any]]) -> str:
        reply = backend.generate([messages])[0]
        if reply.text is None:
            raise RuntimeError(reply.error)
        return reply.text

    return answer
