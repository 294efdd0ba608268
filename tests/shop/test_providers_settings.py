"""A listed payment provider whose settings are missing or unusable is a start-up error naming the
variable (contract section 6): `manage.py check` reports it, and a server refuses to start."""

import pytest

from tests.checkout.providers import key
from tests.fakes import private_pem, public_pem
from tests.shop.test_fail_closed import SECRETS, check, start


def alipay_keys(tmp_path) -> dict[str, str]:
    private, public = private_pem(key("alipay app")), public_pem(key("alipay app"))
    (tmp_path / "app.pem").write_text(private)
    (tmp_path / "alipay.pem").write_text(public)
    return {
        "ALIPAY_APP_ID": "2021000000000001",
        "ALIPAY_PRIVATE_KEY_FILE": str(tmp_path / "app.pem"),
        "ALIPAY_PUBLIC_KEY_FILE": str(tmp_path / "alipay.pem"),
    }


def test_a_listed_provider_without_its_settings_is_a_check_error_naming_the_first_missing():
    result = check(DEBUG="1", PAYMENT_PROVIDERS="sandbox,alipay")
    assert result.returncode != 0
    assert "checkout.E002" in result.stderr and "ALIPAY_APP_ID" in result.stderr


@pytest.mark.parametrize("problem", ["missing", "not a key"])
def test_an_unusable_key_file_is_named(tmp_path, problem):
    given = alipay_keys(tmp_path)
    if problem == "missing":
        given["ALIPAY_PRIVATE_KEY_FILE"] = str(tmp_path / "missing.pem")
    else:
        (tmp_path / "app.pem").write_text("not a key\n")
    result = check(DEBUG="1", PAYMENT_PROVIDERS="sandbox,alipay", **given)
    assert result.returncode != 0, "the shop would start, and fail at the first Alipay Pay"
    assert "checkout.E002" in result.stderr and "ALIPAY_PRIVATE_KEY_FILE" in result.stderr


def test_an_unknown_provider_is_named(tmp_path):
    result = check(DEBUG="1", PAYMENT_PROVIDERS="sandbox,paypal")
    assert result.returncode != 0
    assert "checkout.E001" in result.stderr and "PAYMENT_PROVIDERS" in result.stderr
    assert "paypal" in result.stderr


def test_a_server_refuses_to_start_naming_the_missing_setting():
    result = start(DEBUG="1", PAYMENT_PROVIDERS="sandbox,alipay")
    assert result.returncode != 0
    assert "ALIPAY_APP_ID is not set" in result.stderr


def test_production_with_stripe_alone_needs_stripes_settings_and_no_sandbox_secret():
    production = {k: v for k, v in SECRETS.items() if not k.startswith("SANDBOX_")}
    stripe = {"PAYMENT_PROVIDERS": "stripe", "STRIPE_SECRET_KEY": "sk_live_" + "x" * 24}

    missing = check(**production, **stripe)
    assert missing.returncode != 0
    assert "STRIPE_WEBHOOK_SECRET" in missing.stderr and "SANDBOX_" not in missing.stderr

    given = check(**production, **stripe, STRIPE_WEBHOOK_SECRET="whsec_" + "y" * 32)
    assert given.returncode == 0, given.stderr
