"""Signed webhook bodies, both ways: `X-Kirjuri-Signature: t=<unix seconds>,v1=<hex>` where
v1 is HMAC-SHA256 of "<t>.<raw body>" with a shared secret (the scheme Stripe uses). The time
is signed too, so an old request cannot be replayed after `tolerance` seconds."""

from __future__ import annotations

import hashlib
import hmac
import time

HEADER = "X-Kirjuri-Signature"


def sign(secret: str, body: bytes, at: int | None = None) -> str:
    """The header value signing `body` now (or at `at`)."""
    t = int(time.time()) if at is None else at
    digest = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def verify(secret: str, body: bytes, header: str, tolerance: int = 300, now: float | None = None) -> bool:
    """Whether the header is a valid signature of `body` by `secret`, made within `tolerance`."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        t = int(parts.get("t", ""))
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - t) > tolerance:
        return False
    expected = sign(secret, body, t).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))
