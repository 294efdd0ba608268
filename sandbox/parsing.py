"""Reading the merchant's JSON requests into typed values, with an error that says what is wrong."""

import hashlib
import json
import re
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.utils.http import is_same_domain

OUT_TRADE_NO = re.compile(r"[A-Za-z0-9_\-|*]{1,64}")
CURRENCY = re.compile(r"[A-Z]{3}")
MAX_AMOUNT = 10**12
HTTP_URL = URLValidator(schemes=["http", "https"])
PAYMENT_FIELDS = ("out_trade_no", "amount", "currency", "description", "notify_url", "expire_at")


class InvalidRequest(ValueError):
    """The request is not what the API accepts; the message is shown to the caller."""


@dataclass(frozen=True)
class NewPayment:
    out_trade_no: str
    amount: int
    currency: str
    description: str
    notify_url: str
    expire_at: int  # unix seconds

    def fingerprint(self) -> str:
        canonical = json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


def json_object(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest("the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise InvalidRequest("the body must be a JSON object")
    return data


def integer(data: dict[str, Any], key: str, *, minimum: int, maximum: int) -> int:
    value = data[key]
    # bool is an int subclass in Python; JSON true is not an amount.
    if type(value) is not int or not minimum <= value <= maximum:
        raise InvalidRequest(f"{key} must be an integer from {minimum} to {maximum}")
    return value


def text(
    data: dict[str, Any], key: str, *, pattern: re.Pattern[str] | None = None, max_length: int = 256
) -> str:
    value = data[key]
    if not isinstance(value, str) or len(value) > max_length:
        raise InvalidRequest(f"{key} must be a string of at most {max_length} characters")
    if pattern is not None and not pattern.fullmatch(value):
        raise InvalidRequest(f"{key} must match {pattern.pattern}")
    return value


@lru_cache(maxsize=1024)
def _is_http_url(url: str) -> bool:
    """Django's URL validation, remembered: a merchant sends the same notify_url with every
    payment, and the validator's regular expressions cost more than the rest of the parsing."""
    try:
        HTTP_URL(url)
    except ValidationError:
        return False
    return True


def notify_url_allowed(url: str, origins: list[str]) -> bool:
    """Whether the sandbox may POST to `url`: its scheme, host and port are one of `origins`, or
    its host is, for an entry without a scheme. The sandbox sends wherever a payment asks, so
    without this anyone with its API key could make it send requests anywhere."""
    target = urlsplit(url)
    for origin in origins:
        allowed = urlsplit(origin if "://" in origin else f"//{origin}")
        if not is_same_domain(target.hostname or "", allowed.hostname or ""):
            continue
        if not allowed.scheme or (allowed.scheme, _port(allowed)) == (target.scheme, _port(target)):
            return True
    return False


def _port(url) -> int | None:
    return url.port or {"http": 80, "https": 443}.get(url.scheme)


def new_payment(data: dict[str, Any]) -> NewPayment:
    unknown = sorted(set(data) - set(PAYMENT_FIELDS))
    if unknown:
        raise InvalidRequest(f"unknown fields: {', '.join(unknown)}")
    missing = [key for key in PAYMENT_FIELDS if key not in data]
    if missing:
        raise InvalidRequest(f"missing fields: {', '.join(missing)}")
    notify_url = text(data, "notify_url", max_length=1000)
    if not _is_http_url(notify_url):
        raise InvalidRequest("notify_url must be an absolute http(s) URL")
    if not notify_url_allowed(notify_url, settings.SANDBOX_NOTIFY_ORIGINS):
        raise InvalidRequest("notify_url must point at the shop (SANDBOX_NOTIFY_ORIGINS)")
    return NewPayment(
        out_trade_no=text(data, "out_trade_no", pattern=OUT_TRADE_NO),
        amount=integer(data, "amount", minimum=1, maximum=MAX_AMOUNT),
        currency=text(data, "currency", pattern=CURRENCY),
        description=text(data, "description"),
        notify_url=notify_url,
        expire_at=integer(data, "expire_at", minimum=0, maximum=2**40),
    )
