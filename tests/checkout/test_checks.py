"""The shop's own system checks (`checkout.checks`)."""

from checkout.checks import proxy_headers_check
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
