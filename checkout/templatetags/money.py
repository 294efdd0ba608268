"""Prices in the shopper's language: minor units in, "¥19.99" out.

The currency never changes with the language (a CNY order is paid in CNY); only how it is written
does. Symbols follow CLDR where a symbol would be ambiguous in that language (US$ in Chinese), and
the yuan is ¥ in both languages because it is the shop's own currency.
"""

from decimal import Decimal

from django import template
from django.utils import translation
from django.utils.formats import number_format

register = template.Library()

SYMBOLS = {
    "en": {"CNY": "¥", "USD": "$", "EUR": "€"},
    "zh-hans": {"CNY": "¥", "USD": "US$", "EUR": "€"},
}


@register.filter
def money(amount: int, currency: str = "CNY") -> str:
    """Minor units to a price in the active language: 1999, "CNY" -> "¥19.99"."""
    symbols = SYMBOLS.get(translation.get_language() or "en", SYMBOLS["en"])
    major = Decimal(int(amount)) / 100
    number = number_format(major, decimal_pos=2, use_l10n=True, force_grouping=True)
    return f"{symbols.get(currency, currency + ' ')}{number}"
