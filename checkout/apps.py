from django.apps import AppConfig
from django.db.backends.signals import connection_created


class CheckoutConfig(AppConfig):
    name = "checkout"
    verbose_name = "Checkout"

    def ready(self) -> None:
        from shop.db import replan_on_connect

        connection_created.connect(replan_on_connect)
