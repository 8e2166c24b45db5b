"""Hand a request message an ASGI middleware has already read back to the app it wraps."""

from __future__ import annotations

from typing import Any


def replaying(message: dict[str, Any], receive: Any) -> Any:
    """A `receive` that returns `message` first, then whatever the server sends next."""
    delivered = False

    async def replay() -> Any:
        nonlocal delivered
        if not delivered:
            delivered = True
            return message
        return await receive()

    return replay
