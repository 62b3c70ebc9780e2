"""What the scheduler learns about the provider's own rate limits from its headers.

Anthropic answers every call with ``anthropic-ratelimit-{requests,input-tokens,
output-tokens}-{limit,remaining,reset}``.  Two things are learned per dimension:

* ``limit`` -- the provider's per-minute limit.  The scheduler keeps its own
  rolling 60 s window at or under it.  A rolling window at or under ``L`` is
  stricter than the provider's token bucket of capacity ``L`` refilled at
  ``L`` per minute, so traffic that passes it never draws a 429 by itself.
* ``external`` -- usage the provider sees and our ledger does not: another
  client on the same key, or a previous kernel run within the last minute.
  It is ``(limit - remaining) - our window usage`` (never negative, so our
  reservations the provider has not seen yet cannot make it optimistic), and
  counts as used until the provider's ``reset`` time (at most one minute).

A 429's ``retry-after`` is not handled here but by the scheduler's global pause.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kernel.sched.ledger import DIMS

log = logging.getLogger(__name__)

HEADER_NAMES = {"requests": "requests", "input_tokens": "input-tokens",
                "output_tokens": "output-tokens"}
#: The provider's window is one minute; external usage never counts for longer.
PROVIDER_WINDOW = 60.0


@dataclass
class Learned:
    limit: int | None = None
    remaining: int | None = None
    reset_at: float | None = None      # monotonic
    external: int = 0
    external_until: float = 0.0        # monotonic
    observed_at: float | None = None   # monotonic


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        n = int(float(value.strip()))
    except ValueError:
        log.debug("ignoring rate-limit header value %r", value)
        return None
    return n if n >= 0 else None


def _epoch(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.strip()).timestamp()
    except ValueError:
        log.debug("ignoring rate-limit reset %r", value)
        return None


class ProviderLimits:
    """The provider's limits as last seen in its headers."""

    def __init__(self) -> None:
        self.dims: dict[str, Learned] = {d: Learned() for d in DIMS}

    def observe(self, headers: Mapping[str, str], now: float, wall: float,
                used: Mapping[str, int]) -> bool:
        """Learn from one response's headers; ``used`` is our window usage now.

        Returns True if anything that limits admission changed.
        """
        lower = {str(k).lower(): str(v) for k, v in headers.items()}
        changed = False
        for dim, name in HEADER_NAMES.items():
            prefix = f"anthropic-ratelimit-{name}-"
            limit = _int(lower.get(prefix + "limit"))
            remaining = _int(lower.get(prefix + "remaining"))
            reset_epoch = _epoch(lower.get(prefix + "reset"))
            if limit is None and remaining is None:
                continue
            d = self.dims[dim]
            before = (d.limit, d.external, d.external_until)
            if limit is not None:
                d.limit = limit
            d.remaining = remaining
            d.observed_at = now
            d.reset_at = now + max(0.0, reset_epoch - wall) if reset_epoch is not None else None
            if d.limit is not None and remaining is not None:
                d.external = max(0, (d.limit - remaining) - int(used.get(dim, 0)))
                until = now + PROVIDER_WINDOW
                d.external_until = min(until, d.reset_at) if d.reset_at is not None else until
                if d.external:
                    log.info("provider sees %d %s we did not send (until +%.1f s)", d.external,
                             dim, d.external_until - now)
            changed |= before != (d.limit, d.external, d.external_until)
        return changed

    def limit(self, dim: str) -> int | None:
        return self.dims[dim].limit

    def external(self, dim: str, now: float) -> tuple[int, float]:
        """``(amount, until)`` of external usage still counting at ``now``."""
        d = self.dims[dim]
        if d.external and now < d.external_until:
            return d.external, d.external_until
        return 0, now

    def report(self, now: float) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for dim, d in self.dims.items():
            ext, until = self.external(dim, now)
            out[dim] = {"limit": d.limit, "remaining": d.remaining,
                        "reset_in": None if d.reset_at is None else max(0.0, d.reset_at - now),
                        "external": ext, "external_for": max(0.0, until - now)}
        return out
