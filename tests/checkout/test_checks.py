"""The shop's own system checks (`checkout.checks`)."""

from checkout.checks import providers_check, proxy_headers_check
from tests.shop.test_fail_closed import SECRETS, check


def test_production_without_proxy_headers_is_warned_that_sockets_count_by_the_proxys_address():
    """Behind a proxy every socket would seem to come from the proxy's address."""
    warned = check(**SECRETS)
    assert warned.returncode == 0 and "checkout.W001" in warned.stderr + warned.stdout
    quiet = check(**SECRETS, PROXY_HEADERS="1")
    assert quiet.returncode == 0 and "checkout.W001" not in quiet.stderr + quiet.stdout


def test_development_is_not_warned(settings):
    settings.DEBUG, settings.PROXY_HEADERS = True, False
    assert proxy_headers_check(None) == []


def test_a_listed_provider_without_its_settings_is_an_error_naming_the_variable(settings):
    settings.PAYMENT_PROVIDERS = ["sandbox", "stripe"]
    settings.STRIPE_SECRET_KEY, settings.STRIPE_WEBHOOK_SECRET = "sk_test_x", ""
    [error] = providers_check(None)
    assert error.id == "checkout.E002" and "STRIPE_WEBHOOK_SECRET" in error.msg


def test_an_unknown_or_repeated_provider_is_an_error_naming_the_setting(settings):
    for listed in (["sandbox", "paypal"], ["stripe", "stripe"], []):
        settings.PAYMENT_PROVIDERS = listed
        [error] = providers_check(None)
        assert error.id == "checkout.E001" and "PAYMENT_PROVIDERS" in error.msg


def test_wechat_pay_in_production_wants_an_https_site(settings, tmp_path):
    settings.DEBUG, settings.PAYMENT_PROVIDERS = False, ["wechatpay"]
    settings.SITE_URL = "http://shop.example"
    messages = providers_check(None)
    assert "checkout.W002" in [m.id for m in messages]
    settings.SITE_URL = "https://shop.example"
    assert "checkout.W002" not in [m.id for m in providers_check(None)]
