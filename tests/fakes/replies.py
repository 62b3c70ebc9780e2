"""Scripted replies of the fake Messages API and how they are rendered.

Constructors: :func:`text`, :func:`tool_use`, :func:`message` (or ``a + b``) for
model turns; :func:`rate_limited`, :func:`overloaded`, :func:`server_error`,
:func:`api_error` for error responses; :func:`delay` and :func:`broken_stream`
wrap another reply.
"""

from __future__ import annotations

import json
import math
import re
import secrets
import string
from dataclasses import dataclass, replace
from typing import Any, Iterator, Union

_ALNUM = string.ascii_letters + string.digits


def new_id(prefix: str) -> str:
    """An id shaped like Anthropic's (``msg_…``, ``toolu_…``, ``req_…``)."""
    return prefix + "".join(secrets.choice(_ALNUM) for _ in range(24))


def _tokens(s: str) -> int:
    return max(1, math.ceil(len(s) / 4))


@dataclass(frozen=True)
class MessageReply:
    """A model turn: text and/or tool_use blocks."""

    content: tuple[dict[str, Any], ...]
    stop_reason: str | None = None  # None → "tool_use" if any tool_use block else "end_turn"
    stop_sequence: str | None = None
    output_tokens: int | None = None  # None → estimated from the content

    def __add__(self, other: "MessageReply") -> "MessageReply":
        return message(self, other)

    @property
    def effective_stop_reason(self) -> str:
        if self.stop_reason is not None:
            return self.stop_reason
        return "tool_use" if any(b["type"] == "tool_use" for b in self.content) else "end_turn"

    def output_token_count(self) -> int:
        """Override, else ceil(len/4) of each text, and of name + compact JSON input per tool_use."""
        if self.output_tokens is not None:
            return self.output_tokens
        total = 0
        for b in self.content:
            if b["type"] == "text":
                total += _tokens(b["text"])
            else:
                total += _tokens(b["name"] + json.dumps(b["input"], separators=(",", ":")))
        return max(1, total)


@dataclass(frozen=True)
class ErrorReply:
    """An HTTP error with Anthropic's error body."""

    status: int
    error_type: str
    message: str
    retry_after: float | None = None


@dataclass(frozen=True)
class DelayedReply:
    """Wait ``seconds`` (real time) before answering with ``reply``."""

    seconds: float
    reply: "Reply"


@dataclass(frozen=True)
class BrokenStreamReply:
    """A reply whose stream breaks after ``after_events`` SSE events.

    ``error_type`` None: the connection is dropped mid-body. Otherwise an SSE
    ``error`` event of that type is sent and the stream ends (as Anthropic does
    for e.g. ``overloaded_error`` mid-stream).  A non-streaming request gets a
    200 with a truncated (invalid) JSON body.
    """

    reply: MessageReply
    after_events: int = 3
    error_type: str | None = None


Reply = Union[MessageReply, ErrorReply, DelayedReply, BrokenStreamReply]


# ---------------------------------------------------------------- constructors


def text(
    s: str, *, stop_reason: str | None = None, output_tokens: int | None = None
) -> MessageReply:
    return MessageReply(({"type": "text", "text": s},), stop_reason, None, output_tokens)


def tool_use(
    name: str,
    input: dict[str, Any],
    id: str | None = None,
    *,
    output_tokens: int | None = None,
) -> MessageReply:
    """A tool call. ``input`` is sent as given, so any dict makes a malformed call."""
    block = {"type": "tool_use", "id": id or new_id("toolu_"), "name": name, "input": input}
    return MessageReply((block,), None, None, output_tokens)


def message(
    *parts: MessageReply,
    stop_reason: str | None = None,
    output_tokens: int | None = None,
) -> MessageReply:
    """Combine parts into one turn, e.g. ``message(text("Let me look."), tool_use(...))``."""
    content = tuple(b for p in parts for b in p.content)
    if output_tokens is None and any(p.output_tokens is not None for p in parts):
        output_tokens = sum(p.output_token_count() for p in parts)
    return MessageReply(content, stop_reason, None, output_tokens)


ERROR_MESSAGES = {
    "rate_limit_error": "Number of request tokens has exceeded your per-minute rate limit",
    "overloaded_error": "Overloaded",
    "api_error": "Internal server error",
}


def rate_limited(retry_after: float = 1.0, message: str | None = None) -> ErrorReply:
    """HTTP 429 rate_limit_error with a ``retry-after`` header."""
    return ErrorReply(429, "rate_limit_error", message or ERROR_MESSAGES["rate_limit_error"], retry_after)


def overloaded(retry_after: float | None = None, message: str | None = None) -> ErrorReply:
    """HTTP 529 overloaded_error (``retry-after`` only if given)."""
    return ErrorReply(529, "overloaded_error", message or ERROR_MESSAGES["overloaded_error"], retry_after)


def server_error(status: int = 500, message: str | None = None) -> ErrorReply:
    return ErrorReply(status, "api_error", message or ERROR_MESSAGES["api_error"])


def api_error(
    status: int, error_type: str, message: str, retry_after: float | None = None
) -> ErrorReply:
    """Any Anthropic error, e.g. ``api_error(400, "invalid_request_error", "...")``."""
    return ErrorReply(status, error_type, message, retry_after)


def delay(seconds: float, reply: Reply) -> DelayedReply:
    return DelayedReply(seconds, reply)


def broken_stream(
    reply: MessageReply | None = None, after_events: int = 3, error_type: str | None = None
) -> BrokenStreamReply:
    return BrokenStreamReply(reply or text("This reply never finishes " * 4), after_events, error_type)


def with_stop_reason(reply: MessageReply, stop_reason: str) -> MessageReply:
    return replace(reply, stop_reason=stop_reason)


# ---------------------------------------------------------------- rendering


def error_body(error_type: str, message: str, request_id: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": error_type, "message": message}, "request_id": request_id}


def format_retry_after(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:.3f}"


def message_object(
    reply: MessageReply, *, model: str, usage: dict[str, int], msg_id: str | None = None
) -> dict[str, Any]:
    """The JSON Message object of a non-streaming response."""
    return {
        "id": msg_id or new_id("msg_"),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [dict(b) for b in reply.content],
        "stop_reason": reply.effective_stop_reason,
        "stop_sequence": reply.stop_sequence,
        "usage": dict(usage),
    }


def _chunks(s: str, size: int) -> list[str]:
    return [s[i : i + size] for i in range(0, len(s), size)] or [""]


def _text_chunks(s: str) -> list[str]:
    """Split text into a few words per delta, as the real stream does."""
    words = re.findall(r"\S+\s*|\s+", s)
    out: list[str] = []
    for i in range(0, len(words), 3):
        out.append("".join(words[i : i + 3]))
    return out or [""]


@dataclass(frozen=True)
class SSEEvent:
    event: str
    data: dict[str, Any]
    weight: int = 0  # generated characters carried (paces streaming)

    def encode(self) -> bytes:
        return f"event: {self.event}\ndata: {json.dumps(self.data, separators=(',', ':'))}\n\n".encode()


def _block_start(index: int, block: dict[str, Any]) -> SSEEvent:
    return SSEEvent("content_block_start", {"type": "content_block_start", "index": index, "content_block": block})


def _block_delta(index: int, delta: dict[str, Any], weight: int) -> SSEEvent:
    data = {"type": "content_block_delta", "index": index, "delta": delta}
    return SSEEvent("content_block_delta", data, weight)


def stream_events(message_obj: dict[str, Any]) -> Iterator[SSEEvent]:
    """The SSE events Anthropic sends for ``message_obj``, in order.

    Text arrives a few words per ``text_delta``; tool input as ``input_json_delta``
    pieces (an empty one first, as the real API does, then ~4 slices of the JSON).
    """
    usage = message_obj["usage"]
    start = dict(message_obj, content=[], stop_reason=None, stop_sequence=None)
    start["usage"] = dict(usage, output_tokens=min(1, usage["output_tokens"]))
    yield SSEEvent("message_start", {"type": "message_start", "message": start})
    yield SSEEvent("ping", {"type": "ping"})
    for index, block in enumerate(message_obj["content"]):
        if block["type"] == "text":
            yield _block_start(index, {"type": "text", "text": ""})
            for chunk in _text_chunks(block["text"]):
                yield _block_delta(index, {"type": "text_delta", "text": chunk}, len(chunk))
        else:
            yield _block_start(index, {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}})
            raw = json.dumps(block["input"], separators=(",", ":"))
            for chunk in [""] + _chunks(raw, max(4, len(raw) // 4 + 1)):
                yield _block_delta(index, {"type": "input_json_delta", "partial_json": chunk}, len(chunk))
        yield SSEEvent("content_block_stop", {"type": "content_block_stop", "index": index})
    delta = {"stop_reason": message_obj["stop_reason"], "stop_sequence": message_obj["stop_sequence"]}
    yield SSEEvent("message_delta", {"type": "message_delta", "delta": delta, "usage": dict(usage)})
    yield SSEEvent("message_stop", {"type": "message_stop"})
