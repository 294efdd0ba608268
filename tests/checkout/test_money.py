"""Prices are written in the shopper's language; the currency never changes with it."""

import pytest
from django.utils import translation

from checkout.templatetags.money import money


@pytest.mark.parametrize(
    "language, amount, currency, shown",
    [
        ("en", 1999, "CNY", "¥19.99"),
        ("zh-hans", 1999, "CNY", "¥19.99"),
        ("en", 45900000, "CNY", "¥459,000.00"),
        ("zh-hans", 5, "CNY", "¥0.05"),
        ("en", 1999, "USD", "$19.99"),
        ("zh-hans", 1999, "USD", "US$19.99"),  # a bare $ is ambiguous to a Chinese reader
        ("zh-hans", 1999, "EUR", "€19.99"),
    ],
)
def test_money_is_written_per_language(language, amount, currency, shown):
    with translation.override(language):
        assert money(amount, currency) == shown
