"""Faults a test asks for (errors, HTTP failures, 429s, slowness) and optional rate limits."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Fault:
    """How the next calls to one method misbehave; `remaining=None` means until healed."""

    error: str | None = None
    status: int = 200
    retry_after: int | None = None
    delay: float = 0.0
    remaining: int | None = 1

    def answer(self) -> tuple[int, dict[str, str], dict] | None:
        """(status, headers, body) to send instead of the real answer; None = answer normally."""
        if self.retry_after is not None:
            headers = {"Retry-After": str(self.retry_after)}
            return 429, headers, {"ok": False, "error": "ratelimited"}
        if self.status != 200:
            return self.status, {}, {"ok": False, "error": self.error or "internal_error"}
        if self.error:
            return 200, {}, {"ok": False, "error": self.error}
        return None


class Faults:
    """Pending faults per method name, consumed one call at a time."""

    def __init__(self) -> None:
        self._pending: dict[str, Fault] = {}

    def add(self, method: str, fault: Fault) -> None:
        """Make the next `fault.remaining` calls to `method` misbehave (replacing any other)."""
        self._pending[method] = fault

    def heal(self, method: str | None = None) -> None:
        """Forget the faults of one method, or of every method."""
        if method is None:
            self._pending.clear()
        else:
            self._pending.pop(method, None)

    def take(self, method: str) -> Fault | None:
        """The fault for this call to `method`, if any, counting it as used."""
        fault = self._pending.get(method)
        if fault is None:
            return None
        if fault.remaining is not None:
            fault.remaining -= 1
            if fault.remaining <= 0:
                del self._pending[method]
        return fault


# Slack's limits, simplified to token buckets per (method, channel): (burst, refill per second).
# chat.postMessage: "1 per second per channel, short bursts allowed"; chat.update: Tier 3,
# ~50 per minute. https://docs.slack.dev/apis/web-api/rate-limits
RATE_LIMITS = {"chat.postMessage": (3, 1.0), "chat.update": (50, 50 / 60)}


class RateLimiter:
    """Token buckets per (method, channel) for the methods in RATE_LIMITS."""

    def __init__(self) -> None:
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}

    def allow(self, method: str, channel: str, now: float) -> bool:
        """Whether a call to `method` in `channel` at `now` is within the limit (spends it)."""
        if method not in RATE_LIMITS:
            return True
        burst, per_second = RATE_LIMITS[method]
        tokens, then = self._buckets.get((method, channel), (float(burst), now))
        tokens = min(float(burst), tokens + (now - then) * per_second)
        allowed = tokens >= 1.0
        self._buckets[(method, channel)] = (tokens - 1.0 if allowed else tokens, now)
        return allowed
