"""On PostgreSQL the shop's repeated statements are prepared: the server plans each once per
connection (settings: server-side binding, psycopg's `prepare_threshold`), not on every run; a
schema change under a running server has them prepared again (`shop.db`)."""

import psycopg
import pytest
from django.db import NotSupportedError, connection, transaction

from checkout import selectors
from checkout.models import Order, Product
from tests.checkout import factories as f
from tests.realtime.streams import postgres_url

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


def name_read_prepared(product: Product) -> None:
    for _ in range(6):
        assert Product.objects.get(pk=product.pk).name == product.name
    assert prepared_reads("checkout_product")


@pytest.mark.django_db(transaction=True)
def test_a_column_type_changed_under_a_running_server_is_planned_again(postgres):
    """A migration that widens a column while the servers run (ALTER COLUMN ... TYPE): a read
    outside a transaction still answers; a transaction that meets it fails once, the next works."""
    product = f.product()
    migration = psycopg.connect(postgres_url(connection.settings_dict), autocommit=True)
    widen = "ALTER TABLE checkout_product ALTER COLUMN name TYPE varchar({})"
    try:
        name_read_prepared(product)
        migration.execute(widen.format(121))
        assert Product.objects.get(pk=product.pk).name == product.name

        name_read_prepared(product)
        migration.execute(widen.format(122))
        with pytest.raises(NotSupportedError, match="cached plan"), transaction.atomic():
            Product.objects.get(pk=product.pk)
        with transaction.atomic():
            assert Product.objects.get(pk=product.pk).name == product.name
    finally:
        migration.execute(widen.format(Product._meta.get_field("name").max_length))
        migration.close()
