import pytest

from sandbox.money import format_amount


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        (1999, "CNY", "¥19.99"),
        (5, "CNY", "¥0.05"),
        (123456, "USD", "$1,234.56"),
        (1999, "JPY", "¥1,999"),
        (100, "XYZ", "1.00 XYZ"),
    ],
)
def test_amounts_in_minor_units_are_shown_in_major_units(
    amount: int, currency: str, shown: str
) -> None:
    assert format_amount(amount, currency) == shown
