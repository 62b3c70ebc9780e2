"""Request checks of the fake Messages API: the 400 invalid_request_errors the real API gives.

``strict`` adds the tool_use / tool_result pairing rule, which catches agent-loop
bugs that the real API would reject.
"""

from __future__ import annotations

from typing import Any

from tests.fakes.prompt_cache import MAX_BREAKPOINTS, count_breakpoints


def validate_request(body: Any, *, strict: bool = True, need_max_tokens: bool = True) -> str | None:
    """None if the request is acceptable, else the invalid_request_error message."""
    if not isinstance(body, dict):
        return "request body must be a JSON object"
    if not isinstance(body.get("model"), str):
        return "model: Field required"
    if need_max_tokens and not isinstance(body.get("max_tokens"), int):
        return "max_tokens: Field required"
    messages = body.get("messages")
    if not isinstance(messages, list):
        return "messages: Field required"
    if (found := count_breakpoints(body)) > MAX_BREAKPOINTS:
        return f"A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided. Found {found}."
    if strict:
        return check_tool_pairing(messages)
    return None


def check_tool_pairing(messages: list[Any]) -> str | None:
    """The real API's 400s for tool_use without tool_result and vice versa."""

    def blocks(msg: Any, kind: str) -> list[dict[str, Any]]:
        content = msg.get("content") if isinstance(msg, dict) else None
        if not isinstance(content, list):
            return []
        return [b for b in content if isinstance(b, dict) and b.get("type") == kind]

    for i, msg in enumerate(messages):
        role = msg.get("role") if isinstance(msg, dict) else None
        if role == "assistant" and i + 1 < len(messages):
            ids = [b.get("id") for b in blocks(msg, "tool_use")]
            answered = {b.get("tool_use_id") for b in blocks(messages[i + 1], "tool_result")}
            missing = [x for x in ids if x not in answered]
            if missing:
                return (
                    f"messages.{i + 1}: `tool_use` ids were found without `tool_result` blocks "
                    f"immediately after: {', '.join(map(str, missing))}. Each `tool_use` block must have "
                    f"a corresponding `tool_result` block in the next message."
                )
        if role == "user":
            previous = messages[i - 1] if i > 0 else {}
            known = {b.get("id") for b in blocks(previous, "tool_use")}
            for j, b in enumerate(blocks(msg, "tool_result")):
                if b.get("tool_use_id") not in known:
                    return (
                        f"messages.{i}.content.{j}: unexpected `tool_use_id` found in `tool_result` blocks: "
                        f"{b.get('tool_use_id')}. Each `tool_result` block must have a corresponding "
                        f"`tool_use` block in the previous message."
                    )
    return None
