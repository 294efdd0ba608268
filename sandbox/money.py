"""Showing an amount in minor units the way a cashier page would: 1999 CNY is ¥19.99."""

from decimal import Decimal

SYMBOLS = {"CNY": "¥", "JPY": "¥", "USD": "$", "EUR": "€", "GBP": "£", "HKD": "HK$"}
# ISO 4217 currencies without a minor unit; every other one is taken to have two decimals.
ZERO_DECIMAL = {"JPY", "KRW", "VND", "CLP", "ISK"}


def format_amount(amount: int, currency: str) -> str:
    places = 0 if currency in ZERO_DECIMAL else 2
    number = f"{Decimal(amount).scaleb(-places):,.{places}f}"
    symbol = SYMBOLS.get(currency)
    return f"{symbol}{number}" if symbol else f"{number} {currency}"
