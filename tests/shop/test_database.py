"""On PostgreSQL the shop's repeated statements are prepared: the server plans each once per
connection (settings: server-side binding, psycopg's `prepare_threshold`), not on every run."""

import pytest
from django.db import connection

from checkout import selectors
from checkout.models import Order
from tests.checkout import factories as f

pytestmark = pytest.mark.django_db


def prepared_reads(table: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [s for (s,) in cursor.fetchall() if s.startswith("SELECT") and table in s]


def test_a_statement_run_five_times_is_prepared_with_its_parameters_apart(postgres):
    orders = [f.order() for _ in range(6)]  # their INSERT is prepared too
    assert prepared_reads("checkout_order") == []
    for order in orders:  # each time another value: one statement
        assert selectors.order_with_payment(biz=order.biz).pk == order.pk
    for order in orders:
        assert Order.objects.get(biz=order.biz) == order
    statements = prepared_reads("checkout_order")
    assert len(statements) == 2, statements  # the SQL of `checkout.rows`, and the ORM's
    assert all("$1" in statement for statement in statements)
