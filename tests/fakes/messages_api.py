"""A local fake of the Anthropic Messages API, for tests and benchmarks.

Point the real ``anthropic`` SDK at it::

    with FakeMessagesAPI() as server:
        server.script(text("Hello"), tool_use("ls", {"path": "~"}))
        client = anthropic.Anthropic(api_key="test-key", base_url=server.base_url)
        ...
        assert server.requests[0].api_key == "test-key"  # x-api-key or Authorization: Bearer

One server can serve a whole test module: call :meth:`FakeMessagesAPI.reset`
between tests and :meth:`FakeMessagesAPI.set_limits` to change the limits.

It serves ``POST /v1/messages`` (plain JSON and ``"stream": true`` SSE) and
``POST /v1/messages/count_tokens`` on 127.0.0.1 with Starlette + uvicorn in a
background thread.

Where replies come from, per request: the FIFO queue filled by
:meth:`FakeMessagesAPI.script`, else the ``responder`` callable (given the
request body), else a **500 api_error** saying "no scripted reply" — a test
that forgot to script a reply fails loudly rather than silently.

Token numbers come from :func:`estimate_tokens` (see ``prompt_cache``), prompt
caching from :class:`PromptCache`, rate limits from :class:`RateLimiter`; all
three use the injectable ``clock``.  Delays (:func:`delay`) and generation
pacing (``seconds_per_output_token``) use real time.

Run as a process: ``python -m tests.fakes.messages_api --port 0 --echo``; the
first stdout line is JSON ``{"port": N, "base_url": "http://127.0.0.1:N"}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import signal
import socket
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, AsyncIterator, Callable

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.fakes.prompt_cache import CachePlan, PromptCache, estimate_tokens, segments
from tests.fakes.ratelimit import Admission, RateLimiter
from tests.fakes.validation import validate_request
from tests.fakes.replies import (
    ERROR_MESSAGES,
    BrokenStreamReply,
    DelayedReply,
    ErrorReply,
    MessageReply,
    Reply,
    api_error,
    broken_stream,
    delay,
    error_body,
    format_retry_after,
    message,
    message_object,
    new_id,
    overloaded,
    rate_limited,
    server_error,
    stream_events,
    text,
    tool_use,
)

__all__ = [
    "FakeMessagesAPI",
    "MessageReply",
    "ErrorReply",
    "RecordedRequest",
    "UsageRecord",
    "Reply",
    "api_error",
    "broken_stream",
    "delay",
    "echo_responder",
    "estimate_tokens",
    "message",
    "overloaded",
    "rate_limited",
    "server_error",
    "text",
    "tool_use",
]

log = logging.getLogger(__name__)

Responder = Callable[[dict[str, Any]], Reply]
NO_REPLY_MESSAGE = "fake Messages API: no scripted reply left (queue empty and no responder)"


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names, as received (x-api-key included)
    body: Any  # parsed JSON, or the raw text if it was not JSON
    time: float  # server clock
    wall_time: float
    status: int | None = None  # filled in once answered

    @property
    def api_key(self) -> str | None:
        """The key the client sent, as ``x-api-key`` or ``Authorization: Bearer``."""
        if "x-api-key" in self.headers:
            return self.headers["x-api-key"]
        auth = self.headers.get("authorization", "")
        return auth[len("Bearer ") :] if auth.startswith("Bearer ") else None


@dataclass(frozen=True)
class UsageRecord:
    """One request admitted by the rate limiter."""

    time: float
    input_tokens: int  # uncached remainder
    cache_creation_input_tokens: int
    cache_read_input_tokens: int
    output_tokens: int
    status: int = 200

    @property
    def rate_limited_input_tokens(self) -> int:
        return self.input_tokens + self.cache_creation_input_tokens


class _DropConnection(Exception):
    """Raised inside a streaming body to cut the connection (broken_stream)."""


class _DropFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], _DropConnection))


def echo_responder(body: dict[str, Any]) -> Reply:
    """Answer every request with a short text quoting the last user text."""
    last = ""
    for msg in reversed(body.get("messages") or []):
        content = msg.get("content")
        if isinstance(content, str):
            last = content
        elif isinstance(content, list):
            texts = [b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text"]
            last = " ".join(texts)
        if last:
            break
    return text(f"(fake echo) {last[:200]}")


class FakeMessagesAPI:
    """The fake server. Start with ``with`` or :meth:`start` / :meth:`stop`."""

    def __init__(
        self,
        *,
        port: int = 0,
        responder: Responder | None = None,
        rpm: int | None = None,
        itpm: int | None = None,
        otpm: int | None = None,
        seconds_per_output_token: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        cache_min_tokens: int = 1024,
        strict: bool = True,
    ) -> None:
        self.port = port
        self.responder = responder
        self.seconds_per_output_token = seconds_per_output_token
        self.clock = clock
        self.strict = strict  # validate tool_use / tool_result pairing like the real API
        self.cache = PromptCache(clock, min_tokens=cache_min_tokens)
        self.limiter = RateLimiter(clock, rpm=rpm, itpm=itpm, otpm=otpm)
        self.count_429 = 0  # every 429 sent, scripted or emulated
        self._defaults = (responder, {"rpm": rpm, "itpm": itpm, "otpm": otpm}, seconds_per_output_token)
        self._queue: deque[Reply] = deque()
        self._requests: list[RecordedRequest] = []
        self._usage: list[UsageRecord] = []
        self._lock = threading.Lock()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.app = Starlette(
            routes=[
                Route("/v1/messages", self._messages, methods=["POST"]),
                Route("/v1/messages/count_tokens", self._count_tokens, methods=["POST"]),
                Route("/{path:path}", self._not_found, methods=["GET", "POST", "PUT", "DELETE", "PATCH"]),
            ]
        )

    # ------------------------------------------------------------ lifecycle

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "FakeMessagesAPI":
        logging.getLogger("uvicorn.error").addFilter(_DropFilter())
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="fake-messages-api", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("fake Messages API did not start")
            time.sleep(0.005)
        log.info("fake Messages API listening on %s", self.base_url)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> "FakeMessagesAPI":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------ scripting / inspection

    def reset(self) -> None:
        """Forget everything (queue, requests, usage, 429s, cache, rate windows) and restore
        the constructor's responder, limits and pacing — lets one server serve many tests."""
        with self._lock:
            self._queue.clear()
            self._requests.clear()
            self._usage.clear()
            self.count_429 = 0
            self.responder, limits, self.seconds_per_output_token = self._defaults
            self.cache.clear()
            self.limiter = RateLimiter(self.clock, **limits)

    def set_limits(self, *, rpm: int | None = None, itpm: int | None = None, otpm: int | None = None) -> None:
        """Replace the rate limits (None = unlimited) and start with empty windows."""
        with self._lock:
            self.limiter = RateLimiter(self.clock, rpm=rpm, itpm=itpm, otpm=otpm)

    def script(self, *replies: Reply) -> None:
        """Queue replies, answered in FIFO order before the responder is asked."""
        with self._lock:
            self._queue.extend(replies)

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def usage_log(self) -> list[UsageRecord]:
        with self._lock:
            return list(self._usage)

    def max_window_usage(self, kind: str, window: float = 60.0) -> int:
        """Largest total of ``kind`` over any rolling ``window`` of admitted requests.

        kind: "requests", "input_tokens" (counted toward ITPM: uncached + cache
        writes), "output_tokens", "uncached_input_tokens",
        "cache_creation_input_tokens" or "cache_read_input_tokens".
        """
        getters: dict[str, Callable[[UsageRecord], int]] = {
            "requests": lambda r: 1,
            "input_tokens": lambda r: r.rate_limited_input_tokens,
            "output_tokens": lambda r: r.output_tokens,
            "uncached_input_tokens": lambda r: r.input_tokens,
            "cache_creation_input_tokens": lambda r: r.cache_creation_input_tokens,
            "cache_read_input_tokens": lambda r: r.cache_read_input_tokens,
        }
        get = getters[kind]
        records = sorted(self.usage_log, key=lambda r: r.time)
        best = total = start = 0
        for rec in records:
            total += get(rec)
            while records[start].time <= rec.time - window:
                total -= get(records[start])
                start += 1
            best = max(best, total)
        return best

    # ------------------------------------------------------------ HTTP handlers

    async def _record(self, request: Request) -> RecordedRequest:
        raw = await request.body()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        rec = RecordedRequest(
            method=request.method,
            path=request.url.path,
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
            time=self.clock(),
            wall_time=time.time(),
        )
        with self._lock:
            self._requests.append(rec)
        return rec

    def _headers(self, request_id: str, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {"request-id": request_id, **self.limiter.headers()}
        headers.update(extra or {})
        return headers

    def _error(
        self,
        rec: RecordedRequest,
        request_id: str,
        status: int,
        kind: str,
        msg: str,
        retry_after: float | None = None,
    ) -> JSONResponse:
        rec.status = status
        if status == 429:
            with self._lock:
                self.count_429 += 1
        extra = {"retry-after": format_retry_after(retry_after)} if retry_after is not None else None
        headers = self._headers(request_id, extra)
        return JSONResponse(error_body(kind, msg, request_id), status, headers=headers)

    async def _not_found(self, request: Request) -> Response:
        rec = await self._record(request)
        return self._error(rec, new_id("req_"), 404, "not_found_error", f"Not found: {request.url.path}")

    async def _count_tokens(self, request: Request) -> Response:
        rec = await self._record(request)
        request_id = new_id("req_")
        problem = validate_request(rec.body, strict=self.strict, need_max_tokens=False)
        if problem:
            return self._error(rec, request_id, 400, "invalid_request_error", problem)
        rec.status = 200
        return JSONResponse({"input_tokens": estimate_tokens(rec.body)}, headers=self._headers(request_id))

    async def _next_reply(self, body: dict[str, Any]) -> tuple[Reply, bool]:
        """The reply to give and whether it came from the queue."""
        with self._lock:
            if self._queue:
                return self._queue.popleft(), True
        if self.responder is not None:
            return await run_in_threadpool(self.responder, body), False
        log.warning(NO_REPLY_MESSAGE)
        return server_error(500, NO_REPLY_MESSAGE), False

    def _admit(self, body: dict[str, Any], output_tokens: int) -> tuple[CachePlan, Admission]:
        """Price the request with the prompt cache and pass it through the rate limiter;
        if admitted, commit the cache reads/writes and log the usage."""
        with self._lock:
            plan = self.cache.plan(body["model"], segments(body))
            admission = self.limiter.try_admit(plan.rate_limited_input_tokens, output_tokens)
            if admission.admitted:
                self.cache.commit(plan)
                self._usage.append(
                    UsageRecord(
                        self.clock(),
                        plan.input_tokens,
                        plan.cache_creation_input_tokens,
                        plan.cache_read_input_tokens,
                        output_tokens,
                    )
                )
        return plan, admission

    async def _messages(self, request: Request) -> Response:
        rec = await self._record(request)
        request_id = new_id("req_")
        body = rec.body
        problem = validate_request(body, strict=self.strict)
        if problem:
            return self._error(rec, request_id, 400, "invalid_request_error", problem)
        try:
            original, from_queue = await self._next_reply(body)
        except Exception as exc:  # a broken responder is a test bug: say so in the 500
            log.exception("responder failed")
            return self._error(rec, request_id, 500, "api_error", f"fake responder raised {exc!r}")

        wait, reply = 0.0, original
        while isinstance(reply, DelayedReply):
            wait, reply = wait + reply.seconds, reply.reply
        if isinstance(reply, ErrorReply):
            await asyncio.sleep(wait)
            r = reply
            return self._error(rec, request_id, r.status, r.error_type, r.message, r.retry_after)

        broken = reply if isinstance(reply, BrokenStreamReply) else None
        turn: MessageReply = broken.reply if broken else reply  # type: ignore[assignment]
        output_tokens = turn.output_token_count()
        plan, admission = self._admit(body, output_tokens)
        if not admission.admitted:
            if from_queue:
                with self._lock:
                    self._queue.appendleft(original)  # the retry gets the same scripted reply
            log.info("rate limit: %s (retry after %.2fs)", admission.exceeded, admission.retry_after)
            retry = float(max(1, math.ceil(admission.retry_after)))  # whole seconds, as Anthropic sends
            return self._error(rec, request_id, 429, "rate_limit_error", admission.message, retry)

        await asyncio.sleep(wait)
        usage = {
            "input_tokens": plan.input_tokens,
            "cache_creation_input_tokens": plan.cache_creation_input_tokens,
            "cache_read_input_tokens": plan.cache_read_input_tokens,
            "output_tokens": output_tokens,
        }
        msg = message_object(turn, model=body["model"], usage=usage)
        headers = self._headers(request_id)
        rec.status = 200
        generation_time = output_tokens * self.seconds_per_output_token
        if body.get("stream"):
            headers["cache-control"] = "no-cache"
            return StreamingResponse(
                self._sse(msg, generation_time, broken), media_type="text/event-stream", headers=headers
            )
        await asyncio.sleep(generation_time)
        payload = json.dumps(msg)
        if broken:
            payload = payload[: len(payload) // 2]
        return Response(payload, 200, headers=headers, media_type="application/json")

    async def _sse(
        self, msg: dict[str, Any], generation_time: float, broken: BrokenStreamReply | None
    ) -> AsyncIterator[bytes]:
        events = list(stream_events(msg))
        total_weight = sum(e.weight for e in events) or 1
        for n, event in enumerate(events):
            if broken and n >= broken.after_events:
                if broken.error_type is None:
                    raise _DropConnection("broken_stream: dropping the connection")
                kind = broken.error_type
                err = {"type": "error", "error": {"type": kind, "message": ERROR_MESSAGES.get(kind, kind)}}
                yield f"event: error\ndata: {json.dumps(err)}\n\n".encode()
                return
            if event.weight and generation_time:
                await asyncio.sleep(generation_time * event.weight / total_weight)
            yield event.encode()


# ---------------------------------------------------------------- process entry point


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.fakes.messages_api", description="A local fake of the Anthropic Messages API."
    )
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0 = any free port)")
    parser.add_argument("--rpm", type=int, default=None, help="requests per minute limit")
    parser.add_argument("--itpm", type=int, default=None, help="input tokens per minute limit")
    parser.add_argument("--otpm", type=int, default=None, help="output tokens per minute limit")
    parser.add_argument("--seconds-per-output-token", type=float, default=0.0)
    parser.add_argument("--echo", action="store_true", help="answer every request with a short text")
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), stream=sys.stderr, format="%(asctime)s %(name)s %(message)s"
    )
    if not args.echo:
        log.warning("no --echo: every request will get a 500 'no scripted reply'")

    server = FakeMessagesAPI(
        port=args.port,
        responder=echo_responder if args.echo else None,
        rpm=args.rpm,
        itpm=args.itpm,
        otpm=args.otpm,
        seconds_per_output_token=args.seconds_per_output_token,
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with server:
        print(json.dumps({"port": server.port, "base_url": server.base_url}), flush=True)
        while not stop.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
