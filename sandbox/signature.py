"""The sandbox's notification signature: `Sandbox-Signature: t=<unix>,v1=<hex>[,v1=<hex>...]`.

v1 is HMAC-SHA256 over `"<t>." + raw body` with the notify secret, as Stripe does it. Both sides use
this module, the way a real gateway's SDK serves both its servers and its merchants.
"""

import hashlib
import hmac
from collections.abc import Sequence

HEADER = "Sandbox-Signature"
TOLERANCE_SECONDS = 300


class SignatureError(ValueError):
    """The notification's signature is missing, malformed, stale or wrong."""


def compute(body: bytes, secret: str, timestamp: int) -> str:
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(body: bytes, secret: str, timestamp: int) -> str:
    """The header value for `body`, signed at `timestamp`."""
    return f"t={timestamp},v1={compute(body, secret, timestamp)}"


def verify(
    header: str | None,
    body: bytes,
    secrets: Sequence[str],
    *,
    now: int,
    tolerance: int = TOLERANCE_SECONDS,
) -> None:
    """Raise SignatureError unless one v1 matches one secret and t is within `tolerance` of now."""
    if not header:
        raise SignatureError("missing signature header")
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            raise SignatureError("malformed signature header")
        if key == "t":
            if not value.isdigit() or timestamp is not None:
                raise SignatureError("malformed timestamp")
            timestamp = int(value)
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        raise SignatureError("malformed signature header")
    if abs(now - timestamp) > tolerance:
        raise SignatureError("timestamp outside the tolerance window")
    # Compare every candidate against every secret, so timing says nothing about which matched.
    matched = False
    for secret in secrets:
        expected = compute(body, secret, timestamp)
        for candidate in candidates:
            matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise SignatureError("no signature matches")
