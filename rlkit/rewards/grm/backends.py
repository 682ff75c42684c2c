"""GRM backends: an in-process transformers VLM, and an OpenAI-compatible HTTP server (e.g. ``vllm serve``).

A backend turns chat requests (messages whose image blocks hold images) into reply texts. Failures are
values (``Reply.error``), never exceptions in the training loop, so the reward can return None with the
reason for exactly the samples that failed.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import http.client
import io
import json
import logging
import random
import socket
import ssl
import threading
import time
import urllib.parse
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForImageTextToText

from rlkit.policies import load_processor
from rlkit.rewards.grm.prompt import map_content_blocks
from rlkit.rewards.images import as_pil

logger = logging.getLogger("rlkit.rewards.grm")

__all__ = ["Reply", "GRMBackend", "TransformersBackend", "OpenAIBackend", "encode_image"]

Messages = list[dict[str, Any]]


@dataclass
class Reply:
    """A backend's answer to one request: ``text`` or ``error`` (with ``attempts`` made and cache hit flag)."""

    text: str | None
    error: str | None = None
    attempts: int = 1
    cached: bool = False


class GRMBackend:
    """Interface: ``generate(requests) -> list[Reply]`` and its async twin ``agenerate``."""

    def generate(self, requests: Sequence[Messages]) -> list[Reply]:  # pragma: no cover - abstract
        raise NotImplementedError

    async def agenerate(self, requests: Sequence[Messages]) -> list[Reply]:
        return await asyncio.to_thread(self.generate, requests)


def encode_image(image: Any, fmt: str = "PNG") -> str:
    """A ``data:`` URL holding the image (base64), as OpenAI-compatible servers accept in ``image_url``."""
    buf = io.BytesIO()
    as_pil(image).save(buf, format=fmt)
    mime = "png" if fmt.upper() == "PNG" else fmt.lower()
    return f"data:image/{mime};base64,{base64.b64encode(buf.getvalue()).decode('ascii')}"


def _flatten_system(messages: Messages) -> Messages:
    out = []
    for m in messages:
        c = m.get("content")
        if m.get("role") == "system" and isinstance(c, list):
            m = {**m, "content": "\n".join(b.get("text", "") for b in c if b.get("type") == "text")}
        out.append(m)
    return out


# ---------------------------------------------------------------------------------------------- HF in-process
class TransformersBackend(GRMBackend):
    """An in-process ``AutoModelForImageTextToText`` judge with batched (left-padded) generation.

    ``model`` is a loaded model or a path/hub id loaded with ``from_pretrained``; greedy by default so
    rewards are reproducible. Generation is serialised by a lock (one model, many callers).
    """

    def __init__(self, model: Any, processor: Any = None, *, device: str = "cpu", batch_size: int = 4,
                 max_new_tokens: int = 256, do_sample: bool = False, temperature: float = 1.0,
                 dtype: Any = None) -> None:
        if batch_size < 1:
            raise ValueError(f"TransformersBackend: batch_size must be >= 1, got {batch_size}")
        if isinstance(model, (str, Path)):
            kwargs = {"dtype": dtype} if dtype is not None else {}
            path = str(model)
            model = AutoModelForImageTextToText.from_pretrained(path, **kwargs)
            if processor is None:
                processor = load_processor(path)
        if processor is None:
            raise ValueError("TransformersBackend: pass `processor` when `model` is an already-loaded model")
        self.model = model.to(device).eval()
        self.processor = processor
        self.device, self.batch_size, self.max_new_tokens = device, batch_size, max_new_tokens
        self.do_sample, self.temperature = do_sample, temperature
        self._lock = threading.Lock()

    def _generate_chunk(self, chunk: Sequence[Messages]) -> list[str]:
        msgs = [_flatten_system(m) for m in chunk]
        texts = [self.processor.apply_chat_template(m, tokenize=False, add_generation_prompt=True) for m in msgs]
        images = [as_pil(b["image"]) for m in msgs for msg in m if isinstance(msg.get("content"), list)
                  for b in msg["content"] if b.get("type") == "image"]
        tok = getattr(self.processor, "tokenizer", self.processor)
        old_side = getattr(tok, "padding_side", "right")
        tok.padding_side = "left"
        try:
            inputs = self.processor(text=texts, images=images or None, padding=True, return_tensors="pt")
        finally:
            tok.padding_side = old_side
        inputs = {k: (v.to(self.device) if hasattr(v, "to") else v) for k, v in inputs.items()}
        gen_kwargs: dict[str, Any] = {"max_new_tokens": self.max_new_tokens, "do_sample": self.do_sample}
        if self.do_sample:
            gen_kwargs["temperature"] = self.temperature
        pad_id = getattr(tok, "pad_token_id", None)
        if pad_id is not None:
            gen_kwargs["pad_token_id"] = pad_id
        with torch.no_grad():
            out = self.model.generate(**inputs, **gen_kwargs)
        new = out[:, inputs["input_ids"].shape[1]:]
        return tok.batch_decode(new, skip_special_tokens=True)

    def generate(self, requests: Sequence[Messages]) -> list[Reply]:
        replies: list[Reply] = []
        with self._lock:
            for start in range(0, len(requests), self.batch_size):
                chunk = requests[start:start + self.batch_size]
                try:
                    replies += [Reply(t) for t in self._generate_chunk(chunk)]
                except Exception as exc:  # noqa: BLE001 - a failed batch becomes per-request errors
                    logger.warning("TransformersBackend: generation failed for %d requests: %s", len(chunk), exc)
                    replies += [Reply(None, f"generation failed: {type(exc).__name__}: {exc}")] * len(chunk)
        return replies


# ---------------------------------------------------------------------------------------------- HTTP
class _RetryableError(Exception):
    pass


class OpenAIBackend(GRMBackend):
    """Client for an OpenAI-compatible ``/v1/chat/completions`` server (``vllm serve``, TGI, OpenAI, ...).

    Images are sent inline as base64 ``data:`` URLs. At most ``max_concurrency`` requests are in flight.
    ``timeout`` (seconds) is each attempt's overall deadline: connecting, sending, the headers and the whole
    body must finish within it (a server that trickles bytes is cut off, not waited on). Connection errors,
    deadlines, bodies cut short, HTTP 429 and 5xx and non-JSON bodies are retried up to ``max_retries``
    times with exponential backoff (``backoff * 2**k``, jittered, capped at ``max_backoff``), so one request
    takes at most about ``(max_retries + 1) * timeout`` plus the backoffs; other 4xx fail at once. The
    server is reached directly (HTTP proxies in the environment are not used). Successful answers are cached by a SHA-256 of the request
    (model, messages with image bytes, sampling settings) in memory (``cache_size`` entries) and, with
    ``cache_dir``, on disk, so a repeated judgement costs nothing.
    """

    def __init__(self, base_url: str, model: str, *, api_key: str | None = None, max_concurrency: int = 8,
                 timeout: float = 60.0, max_retries: int = 3, backoff: float = 0.5, max_backoff: float = 8.0,
                 temperature: float = 0.0, max_tokens: int = 512, cache: bool = True, cache_size: int = 65536,
                 cache_dir: str | Path | None = None, image_format: str = "PNG",
                 extra_body: dict[str, Any] | None = None) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"OpenAIBackend: base_url must start with http:// or https://, got {base_url!r}")
        if max_concurrency < 1 or max_retries < 0 or timeout <= 0:
            raise ValueError("OpenAIBackend: need max_concurrency >= 1, max_retries >= 0, timeout > 0 "
                             f"(got {max_concurrency}, {max_retries}, {timeout})")
        base = base_url.rstrip("/")
        self.url = base + ("/chat/completions" if base.endswith("/v1") else "/v1/chat/completions")
        self.model, self.api_key = model, api_key
        self.max_concurrency, self.timeout, self.max_retries = max_concurrency, float(timeout), max_retries
        self.backoff, self.max_backoff = float(backoff), float(max_backoff)
        self.temperature, self.max_tokens, self.image_format = temperature, max_tokens, image_format
        self.extra_body = dict(extra_body or {})
        self.cache_enabled, self.cache_size = cache, cache_size
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        if self.cache_dir is not None:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
        self._cache: OrderedDict[str, str] = OrderedDict()
        self._cache_lock = threading.Lock()
        self.stats = {"requests": 0, "http_calls": 0, "retries": 0, "cache_hits": 0, "failures": 0}
        self._stats_lock = threading.Lock()

    def _bump(self, key: str) -> None:
        with self._stats_lock:
            self.stats[key] += 1

    # -- request building -----------------------------------------------------------------------
    def payload(self, messages: Messages) -> dict[str, Any]:
        """The JSON body for one request (images encoded as data URLs)."""
        def encode(b: dict[str, Any]) -> dict[str, Any]:
            if b.get("type") != "image":
                return b
            return {"type": "image_url", "image_url": {"url": encode_image(b["image"], self.image_format)}}

        out = map_content_blocks(messages, encode)
        body = {"model": self.model, "messages": out, "temperature": self.temperature,
                "max_tokens": self.max_tokens, **self.extra_body}
        return body

    @staticmethod
    def cache_key(body: dict[str, Any]) -> str:
        return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()

    def _cache_get(self, key: str) -> str | None:
        if not self.cache_enabled:
            return None
        with self._cache_lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        if self.cache_dir is not None:
            f = self.cache_dir / f"{key}.json"
            if f.exists():
                try:
                    text = json.loads(f.read_text())["text"]
                except (OSError, ValueError, KeyError):
                    return None
                self._cache_put(key, text, disk=False)
                return text
        return None

    def _cache_put(self, key: str, text: str, disk: bool = True) -> None:
        if not self.cache_enabled:
            return
        with self._cache_lock:
            self._cache[key] = text
            self._cache.move_to_end(key)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        if disk and self.cache_dir is not None:
            tmp = self.cache_dir / f".{key}.{threading.get_ident()}.tmp"
            tmp.write_text(json.dumps({"text": text}))
            tmp.replace(self.cache_dir / f"{key}.json")

    # -- HTTP ------------------------------------------------------------------------------------
    def _post_once(self, data: bytes) -> str:
        """One attempt, bounded as a whole by ``self.timeout`` (connect, send, headers and body together).

        A socket timeout only bounds each read, so a server that trickles bytes could hold a client forever;
        a watchdog timer shuts the socket down at the deadline instead, which ends any blocked read at once.
        """
        parts = urllib.parse.urlsplit(self.url)
        headers = {"Content-Type": "application/json", "Content-Length": str(len(data))}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        if parts.scheme == "https":
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                parts.hostname, parts.port, timeout=self.timeout, context=ssl.create_default_context())
        else:
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=self.timeout)
        expired = threading.Event()
        held: list[socket.socket] = []  # the connected socket (http.client drops conn.sock once the body starts)

        def expire() -> None:
            expired.set()
            for sock in held:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        deadline = f"request to {self.url} timed out: no complete answer within its {self.timeout:g}s deadline"
        self._bump("http_calls")
        timer = threading.Timer(self.timeout, expire)
        timer.daemon = True
        timer.start()
        try:
            conn.connect()
            held.append(conn.sock)
            if expired.is_set():  # the deadline passed while connecting (the watchdog saw no socket yet)
                raise _RetryableError(deadline)
            conn.request("POST", parts.path or "/", body=data, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
            status, reason = resp.status, resp.reason
        except _RetryableError:
            raise
        except http.client.IncompleteRead as exc:
            if expired.is_set():
                raise _RetryableError(deadline) from None
            want = f" of {len(exc.partial) + exc.expected}" if exc.expected is not None else ""
            raise _RetryableError(f"response body from {self.url} cut short ({len(exc.partial)}{want} bytes "
                                  "received)") from None
        except (OSError, http.client.HTTPException) as exc:
            if expired.is_set() or isinstance(exc, TimeoutError):
                raise _RetryableError(deadline) from None
            raise _RetryableError(f"request to {self.url} failed: {type(exc).__name__}: {exc}") from None
        finally:
            timer.cancel()
            conn.close()
        if expired.is_set():  # the body ended because the watchdog closed the socket
            raise _RetryableError(deadline)
        if status >= 400:
            body = raw[:300].decode("utf-8", "replace").strip()
            msg = f"HTTP {status} from {self.url}: {body or reason}"
            if status == 429 or status >= 500:
                raise _RetryableError(msg)
            raise RuntimeError(msg)
        try:
            obj = json.loads(raw)
            content = obj["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise _RetryableError(f"malformed response from {self.url}: {raw[:200]!r}") from None
        if isinstance(content, list):  # some servers return content blocks
            content = "".join(b.get("text", "") for b in content if isinstance(b, dict))
        if not isinstance(content, str):
            raise _RetryableError(f"response content from {self.url} is {type(content).__name__}, not text")
        return content

    def complete(self, messages: Messages) -> Reply:
        """One request with cache, retries and backoff; errors come back in ``Reply.error``."""
        self._bump("requests")
        body = self.payload(messages)
        key = self.cache_key(body)
        hit = self._cache_get(key)
        if hit is not None:
            self._bump("cache_hits")
            return Reply(hit, cached=True, attempts=0)
        data = json.dumps(body).encode()
        last = "no attempt made"
        for attempt in range(self.max_retries + 1):
            try:
                text = self._post_once(data)
            except _RetryableError as exc:
                last = str(exc)
                if attempt < self.max_retries:
                    delay = min(self.max_backoff, self.backoff * 2 ** attempt) * (0.5 + random.random() / 2)
                    self._bump("retries")
                    logger.warning("GRM server: %s; retry %d/%d in %.2fs", last, attempt + 1, self.max_retries,
                                   delay)
                    time.sleep(delay)
                continue
            except Exception as exc:  # noqa: BLE001 - non-retryable: report, do not crash the trainer
                self._bump("failures")
                logger.warning("GRM server: %s (not retried)", exc)
                return Reply(None, str(exc), attempts=attempt + 1)
            self._cache_put(key, text)
            return Reply(text, attempts=attempt + 1)
        self._bump("failures")
        logger.warning("GRM server: giving up after %d attempts: %s", self.max_retries + 1, last)
        return Reply(None, f"{last} (gave up after {self.max_retries + 1} attempts)", attempts=self.max_retries + 1)

    def generate(self, requests: Sequence[Messages]) -> list[Reply]:
        if not requests:
            return []
        with ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(requests))) as pool:
            return list(pool.map(self.complete, requests))

    async def agenerate(self, requests: Sequence[Messages]) -> list[Reply]:
        sem = asyncio.Semaphore(self.max_concurrency)

        async def one(m: Messages) -> Reply:
            async with sem:
                return await asyncio.to_thread(self.complete, m)

        return list(await asyncio.gather(*(one(m) for m in requests)))
