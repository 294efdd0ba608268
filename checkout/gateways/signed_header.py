"""The `t=<unix seconds>,v1=<hex>[,v1=<hex>...]` signature header of the sandbox's notifications
(contract section 4), as Stripe signs its webhooks: HMAC-SHA256 over `"<t>." + raw body`.

Parsed strictly: anything but short ASCII digits for `t` and 64 hex digits for `v1` is refused,
never passed to `int()` or compared.
"""

import hashlib
import hmac
import re
from collections.abc import Sequence

TOLERANCE_SECONDS = 300
TIMESTAMP = re.compile(r"[0-9]{1,12}", re.ASCII)
SIGNATURE = re.compile(r"[0-9a-f]{64}", re.ASCII)


class SignatureError(ValueError):
    """The signature is missing, malformed, outside the time window, or wrong."""


def signature(body: bytes, secret: str, timestamp: int) -> str:
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify(
    header: str | None,
    body: bytes,
    secrets: Sequence[str],
    *,
    now: int,
    tolerance: int = TOLERANCE_SECONDS,
) -> None:
    """Raise SignatureError unless one v1 matches one secret and t is within `tolerance` of now,
    either way."""
    if not header:
        raise SignatureError("missing signature header")
    timestamps: list[str] = []
    candidates: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            raise SignatureError("malformed signature header")
        if key == "t":
            timestamps.append(value)
        elif key == "v1" and SIGNATURE.fullmatch(value):
            candidates.append(value)
    if len(timestamps) != 1 or not TIMESTAMP.fullmatch(timestamps[0]):
        raise SignatureError("malformed timestamp")
    if not candidates:
        raise SignatureError("no well-formed v1 signature")
    timestamp = int(timestamps[0])
    if abs(now - timestamp) > tolerance:
        raise SignatureError("timestamp outside the tolerance window")
    # Every candidate against every secret, so timing says nothing about which matched.
    matched = False
    for secret in secrets:
        expected = signature(body, secret, timestamp)
        for candidate in candidates:
            matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise SignatureError("no signature matches")
