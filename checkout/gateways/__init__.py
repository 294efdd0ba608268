"""The payment providers the shop can take money through, one module each implementing `Gateway`.

`PAYMENT_PROVIDERS` lists the enabled ones, in the order the shopper sees them. Each gateway is
built once per process from its settings (its keys read and parsed then), and again only when a
test changes its settings.
"""

import functools

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from checkout.gateways.base import Gateway

PROVIDERS = ("sandbox", "alipay", "wechatpay", "stripe")


@functools.cache
def enabled() -> tuple[str, ...]:
    """The enabled providers, in their configured order; ImproperlyConfigured for a list the shop
    cannot serve. Read once per process: every panel and notification asks."""
    names = tuple(settings.PAYMENT_PROVIDERS)
    unknown = [name for name in names if name not in PROVIDERS]
    if unknown or not names or len(set(names)) != len(names):
        raise ImproperlyConfigured(
            f"PAYMENT_PROVIDERS must list some of {', '.join(PROVIDERS)}, each once; "
            f"it is {','.join(names)!r}."
        )
    return names


@functools.cache
def get_gateway(name: str) -> Gateway:
    """The gateway of provider `name`, enabled or not (a payment started before a provider was
    disabled is still queried and closed); ImproperlyConfigured names a missing or bad setting."""
    match name:
        case "sandbox":
            from checkout.gateways.sandbox import SandboxGateway

            return SandboxGateway()
        case "alipay":
            from checkout.gateways.alipay import AlipayConfig, AlipayGateway

            return AlipayGateway(AlipayConfig.from_settings())
        case "wechatpay":
            from checkout.gateways.wechatpay import WechatPayConfig, WechatPayGateway

            return WechatPayGateway(WechatPayConfig.from_settings())
        case "stripe":
            from checkout.gateways.stripe import StripeConfig, StripeGateway

            return StripeGateway(StripeConfig.from_settings())
    raise LookupError(f"unknown payment provider {name!r}")


def check_configured() -> None:
    """Build every enabled gateway, so that a server refuses to start, naming the setting, rather
    than fail at the first Pay."""
    for name in enabled():
        get_gateway(name)


def settings_changed(*, setting: str, **kwargs) -> None:
    """Django's `setting_changed` signal (tests): gateways built from old settings are dropped."""
    if setting.split("_")[0] in {"PAYMENT", "SANDBOX", "ALIPAY", "WECHATPAY", "STRIPE"}:
        enabled.cache_clear()
        get_gateway.cache_clear()
