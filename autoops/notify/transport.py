"""HTTP for notifiers: JSON POST with a timeout, and the two ways a delivery can fail."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any


class DeliveryError(Exception):
    """Not delivered now; the outbox tries again on a later run."""


class RetryAfterError(DeliveryError):
    """The receiver asked to wait (HTTP 429 with ``retry_after``)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"rate limited: retry after {seconds:g} s")
        self.seconds = seconds


def post_json(url: str, body: bytes, headers: dict[str, str], timeout: float) -> dict[str, Any]:
    """POST ``body`` (JSON) and return the JSON answer; DeliveryError on any failure."""
    if not url.startswith(("https://", "http://")):
        raise DeliveryError(f"not an http(s) URL: {url[:40]!r}")
    request = urllib.request.Request(url, data=body, method="POST",  # noqa: S310 - http(s) only
                                     headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310
            data = answer.read()
    except urllib.error.HTTPError as exc:
        detail = _json(exc.read())
        if exc.code == 429:
            wait = (detail.get("parameters") or {}).get("retry_after") or exc.headers.get(
                "Retry-After") or 1
            raise RetryAfterError(float(wait)) from None
        raise DeliveryError(f"HTTP {exc.code}: {str(detail.get('description', ''))[:200]}"
                            ) from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise DeliveryError(f"cannot reach the receiver: {getattr(exc, 'reason', exc)}") from None
    return _json(data)


def _json(data: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(data or b"{}")
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}
