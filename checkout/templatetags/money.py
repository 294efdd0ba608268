from django import template

register = template.Library()

SYMBOLS = {"CNY": "¥", "USD": "$", "EUR": "€"}


@register.filter
def money(amount: int, currency: str = "CNY") -> str:
    """Minor units to a price: 1999, "CNY" -> "¥19.99"."""
    major, minor = divmod(int(amount), 100)
    return f"{SYMBOLS.get(currency, currency + ' ')}{major:,}.{minor:02d}"
