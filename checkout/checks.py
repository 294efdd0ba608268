"""System checks of the shop's own settings, shown by `manage.py check` and by every management
command that starts (`migrate` in `make prod`, the reconciler under supervisor)."""

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning
from django.core.exceptions import ImproperlyConfigured

from checkout import gateways


def proxy_headers_check(app_configs, **kwargs) -> list[CheckMessage]:
    """Production is meant to sit behind a reverse proxy (deploy/nginx.conf): without
    PROXY_HEADERS the shop may be reading the proxy's address and scheme, not the shopper's."""
    if settings.DEBUG or settings.PROXY_HEADERS:
        return []
    return [
        Warning(
            "DEBUG is off and PROXY_HEADERS is not set.",
            hint=(
                "Behind a reverse proxy, set PROXY_HEADERS=1 and run daphne with --proxy-headers "
                "(deploy/supervisord.conf does): otherwise every status socket comes from the "
                "proxy's address, and WS_MAX_PER_CLIENT counts all shoppers as one client."
            ),
            id="checkout.W001",
        )
    ]


def providers_check(app_configs, **kwargs) -> list[CheckMessage]:
    """Every listed payment provider has complete settings (contract section 6)."""
    try:
        names = gateways.enabled()
    except ImproperlyConfigured as error:
        return [Error(str(error), id="checkout.E001")]
    errors = []
    for name in names:
        try:
            gateways.get_gateway(name)
        except ImproperlyConfigured as error:
            errors.append(
                Error(
                    str(error),
                    hint=f"PAYMENT_PROVIDERS lists {name}: README, 'Taking real payments'.",
                    id="checkout.E002",
                )
            )
    if "wechatpay" in names and not settings.DEBUG and not settings.SITE_URL.startswith("https:"):
        errors.append(
            Warning(
                "WeChat Pay is listed but SITE_URL is not HTTPS.",
                hint="WeChat Pay sends notifications only to an HTTPS notify_url.",
                id="checkout.W002",
            )
        )
    return errors
