"""Reading a payment system's JSON strictly: a field of the exact type, and well-formed."""

import re
from collections.abc import Mapping
from typing import Any

# Our order's id (its biz), every payment system's out_trade_no or client_reference_id.
BIZ = re.compile(r"[0-9a-f]{32}", re.ASCII)
# The largest amount an order or payment row holds (PositiveIntegerField, on every database): a
# larger one is about no order of ours, and would fail the insert of its payment.
MAX_AMOUNT = 2**31 - 1


def field(data: Mapping[str, Any], key: str, kind: type, pattern: re.Pattern[str] | None = None):
    """`data[key]`, if it is of type `kind` (a bool is no int) and matches `pattern`; KeyError,
    TypeError or ValueError otherwise, for the caller to turn into a refusal."""
    value = data[key]
    if type(value) is not kind:  # noqa: E721 - bool must not pass for int
        raise TypeError(f"{key} must be {kind.__name__}")
    if pattern is not None and not pattern.fullmatch(value):
        raise ValueError(f"{key} is not well-formed")
    return value
