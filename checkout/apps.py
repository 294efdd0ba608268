from django.apps import AppConfig
from django.core import checks

from checkout.checks import proxy_headers_check


class CheckoutConfig(AppConfig):
    name = "checkout"
    verbose_name = "Checkout"

    def ready(self) -> None:
        checks.register(proxy_headers_check)
