from django.apps import AppConfig
from django.core import checks
from django.test.signals import setting_changed


class CheckoutConfig(AppConfig):
    name = "checkout"
    verbose_name = "Checkout"

    def ready(self) -> None:
        from checkout import gateways
        from checkout.checks import providers_check, proxy_headers_check

        checks.register(proxy_headers_check)
        checks.register(providers_check)
        setting_changed.connect(gateways.settings_changed)
