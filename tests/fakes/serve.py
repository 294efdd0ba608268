"""Alipay, WeChat Pay and Stripe as local servers: to try the shop with every provider by hand
(`make fakes`, then `make run` with the settings written here) and for browser tests.

    python -m tests.fakes.serve --dir .fakes [--host 127.0.0.1] [--port 8300]

The first run makes the keys and ids in DIR (private keys 0600); later runs reuse them. Alipay
listens on PORT+1, WeChat Pay on PORT+2, Stripe on PORT+3 (`--port 0`: free ports, for tests).
Once all three listen, and not before, it writes DIR/env: every setting the shop needs to use them,
as KEY=value lines (values quoted for a POSIX shell where they need it), the format honcho's `-e`
reads and `set -a; . DIR/env; set +a` too. `--ready-file` also writes their addresses as JSON.
SIGINT or SIGTERM stops them; the files stay.

The fakes' pages, where a person (or Playwright) plays the shopper: Alipay's `qr_code` and Stripe's
session `url` are pages of the fakes; WeChat Pay's `code_url` opens only in WeChat, so its fake's
root page lists the open trades with a Pay button each. Stripe sends its events to the one webhook
endpoint given by `--stripe-webhook-url` (default: `$SITE_URL`, else http://127.0.0.1:8000, then
/payments/notify/stripe/).
"""

import argparse
import asyncio
import json
import os
import secrets
import shlex
import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import rsa

from tests.fakes import load_private, private_pem, public_pem
from tests.fakes.alipay import FakeAlipay
from tests.fakes.delivery import DEFAULT_DELAYS, Notifier
from tests.fakes.stripe import FakeStripe, new_secret_key, new_webhook_secret
from tests.fakes.wechatpay import FakeWechatPay

PROVIDERS = "sandbox,alipay,wechatpay,stripe"
WEBHOOK_PATH = "/payments/notify/stripe/"


def digits(count: int) -> str:
    return "".join(secrets.choice("0123456789") for _ in range(count))


def new_credentials() -> dict[str, str]:
    mchid = "19" + digits(8)
    return {
        "alipay_app_id": "2021" + digits(12),
        "wechatpay_mchid": mchid,
        "wechatpay_appid": "wx" + secrets.token_hex(8),
        "wechatpay_apiv3_key": secrets.token_hex(16),  # 32 characters
        "wechatpay_cert_serial": secrets.token_hex(20).upper(),
        "wechatpay_public_key_id": "PUB_KEY_ID_01" + mchid + digits(16),
        "stripe_secret_key": new_secret_key(),
        "stripe_webhook_secret": new_webhook_secret(),
    }


def write(path: Path, text: str, mode: int = 0o600) -> None:
    """Write `path` whole or not at all (a reader never sees half a file), readable by `mode`."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)
    os.replace(partial, path)


class Keys:
    """The ids, secrets and keys in a directory: made when missing, otherwise reused."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        stored = directory / "credentials.json"
        found = json.loads(stored.read_text()) if stored.exists() else {}
        self.ids = {**new_credentials(), **found}
        if self.ids != found:
            write(stored, json.dumps(self.ids, indent=2) + "\n")
        # The shop's keys (it signs with them) and the providers' (the fakes sign with them; the
        # shop gets their public halves).
        self.alipay_app = self._private("alipay/app_private_key.pem")
        self.alipay = self._private("alipay/alipay_private_key.pem")
        self.alipay_public_file = self._public("alipay/alipay_public_key.pem", self.alipay)
        self.wechatpay_merchant = self._private("wechatpay/apiclient_key.pem")
        self.wechatpay = self._private("wechatpay/platform_private_key.pem")
        self.wechatpay_public_file = self._public("wechatpay/pub_key.pem", self.wechatpay)

    def file(self, name: str) -> Path:
        return self.directory / name

    def _private(self, name: str) -> rsa.RSAPrivateKey:
        path = self.file(name)
        if path.exists():
            return load_private(path.read_text())
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        write(path, private_pem(key))
        return key

    def _public(self, name: str, key: rsa.RSAPrivateKey) -> Path:
        path = self.file(name)
        text = public_pem(key)
        if not path.exists() or path.read_text() != text:
            write(path, text, mode=0o644)
        return path


def shop_settings(
    keys: Keys, alipay: FakeAlipay, wechatpay: FakeWechatPay, stripe: FakeStripe
) -> dict[str, str]:
    """Every setting the shop needs for the three fakes (contract section 6)."""
    ids = keys.ids
    return {
        "PAYMENT_PROVIDERS": PROVIDERS,
        "ALIPAY_APP_ID": ids["alipay_app_id"],
        "ALIPAY_PRIVATE_KEY_FILE": str(keys.file("alipay/app_private_key.pem")),
        "ALIPAY_PUBLIC_KEY_FILE": str(keys.alipay_public_file),
        "ALIPAY_GATEWAY_URL": alipay.url,
        "WECHATPAY_MCHID": ids["wechatpay_mchid"],
        "WECHATPAY_APPID": ids["wechatpay_appid"],
        "WECHATPAY_APIV3_KEY": ids["wechatpay_apiv3_key"],
        "WECHATPAY_CERT_SERIAL": ids["wechatpay_cert_serial"],
        "WECHATPAY_PRIVATE_KEY_FILE": str(keys.file("wechatpay/apiclient_key.pem")),
        "WECHATPAY_PUBLIC_KEY_ID": ids["wechatpay_public_key_id"],
        "WECHATPAY_PUBLIC_KEY_FILE": str(keys.wechatpay_public_file),
        "WECHATPAY_API_URL": wechatpay.url,
        "STRIPE_SECRET_KEY": ids["stripe_secret_key"],
        "STRIPE_WEBHOOK_SECRET": ids["stripe_webhook_secret"],
        "STRIPE_API_URL": stripe.url,
    }


def env_text(values: Mapping[str, str]) -> str:
    lines = [
        "# The shop's settings for the local payment fakes (python -m tests.fakes.serve).",
        "# Read with: honcho start -e <this file>, or: set -a; . <this file>; set +a",
        *(f"{name}={shlex.quote(value)}" for name, value in values.items()),
    ]
    return "\n".join(lines) + "\n"


def default_webhook_url() -> str:
    site = os.environ.get("SITE_URL") or "http://127.0.0.1:8000"
    return site.rstrip("/") + WEBHOOK_PATH


def delays(text: str) -> tuple[float, ...]:
    try:
        found = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of seconds: {text!r}") from None
    if any(delay < 0 for delay in found):
        raise argparse.ArgumentTypeError("seconds cannot be negative")
    return found


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tests.fakes.serve",
        description="Serve local fakes of Alipay, WeChat Pay and Stripe, and write the shop's "
        "settings for them to DIR/env.",
    )
    parser.add_argument("--dir", default=".fakes", help="keys, ids and the env file (.fakes)")
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to serve on, and the one the pages name"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=8300,
        help="Alipay on PORT+1, WeChat Pay on PORT+2, Stripe on PORT+3 (8300); 0: free ports",
    )
    parser.add_argument(
        "--stripe-webhook-url",
        default=default_webhook_url(),
        help="where Stripe's events go (the shop's endpoint; default from $SITE_URL)",
    )
    parser.add_argument(
        "--retry-delays",
        type=delays,
        default=DEFAULT_DELAYS,
        metavar="SECONDS,...",
        help="seconds before each further attempt at an unacknowledged notice (2,5,15,30,60)",
    )
    parser.add_argument(
        "--ready-file", help="also write the fakes' addresses here, as JSON, once they listen"
    )
    return parser


async def run(args: argparse.Namespace) -> int:
    directory = Path(args.dir).resolve()
    env_file = directory / "env"
    ready_file = Path(args.ready_file).resolve() if args.ready_file else None
    # Whoever waits for these files waits for servers that listen: an old copy must not answer.
    env_file.unlink(missing_ok=True)
    if ready_file is not None:
        ready_file.unlink(missing_ok=True)
    keys = Keys(directory)
    alipay = FakeAlipay(
        app_id=keys.ids["alipay_app_id"],
        app_public_key=public_pem(keys.alipay_app),
        alipay_private_key=private_pem(keys.alipay),
        notifier=Notifier(args.retry_delays),
    )
    wechatpay = FakeWechatPay(
        mchid=keys.ids["wechatpay_mchid"],
        appid=keys.ids["wechatpay_appid"],
        apiv3_key=keys.ids["wechatpay_apiv3_key"],
        cert_serial=keys.ids["wechatpay_cert_serial"],
        public_key_id=keys.ids["wechatpay_public_key_id"],
        merchant_key=keys.wechatpay_merchant,
        platform_key=keys.wechatpay,
        notifier=Notifier(args.retry_delays),
    )
    stripe = FakeStripe(
        secret_key=keys.ids["stripe_secret_key"],
        webhook_secret=keys.ids["stripe_webhook_secret"],
        webhook_url=args.stripe_webhook_url,
        notifier=Notifier(args.retry_delays),
    )
    fakes: Sequence[tuple[str, FakeAlipay | FakeWechatPay | FakeStripe]] = (
        ("alipay", alipay),
        ("wechatpay", wechatpay),
        ("stripe", stripe),
    )
    # Handled from before the files say the fakes listen: whoever reads them may stop us at once.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    started = []
    try:
        for offset, (name, fake) in enumerate(fakes, start=1):
            port = args.port + offset if args.port else 0
            try:
                await fake.start(args.host, port)
            except OSError as error:
                print(
                    f"{name}: cannot listen on {args.host}:{port}: {error.strerror or error} "
                    "(another `make fakes`? --port N serves on N+1..N+3, --port 0 on free ports)",
                    file=sys.stderr,
                )
                return 1
            started.append(fake)
        write(env_file, env_text(shop_settings(keys, alipay, wechatpay, stripe)))
        bases = {
            "alipay": alipay.base,
            "wechatpay": wechatpay.url,
            "stripe": stripe.url,
        }
        if ready_file is not None:
            ready = {
                "env": str(env_file),
                "pid": os.getpid(),
                **bases,
                "alipay_gateway_url": alipay.url,
                "stripe_webhook_url": stripe.webhook_url,
            }
            write(ready_file, json.dumps(ready, indent=2) + "\n", mode=0o644)
        print(
            f"Payment fakes, keys in {directory} (Ctrl-C stops them):\n"
            f"  Alipay      {bases['alipay']}/  gateway {alipay.url}\n"
            f"  WeChat Pay  {bases['wechatpay']}/  open trades, to pay by hand\n"
            f"  Stripe      {bases['stripe']}/  events to {stripe.webhook_url}\n"
            f"The shop's settings for them: {env_file}\n"
            f"  e.g. honcho start -e {env_file}, or: set -a; . {env_file}; set +a",
            flush=True,
        )
        await stop.wait()
        return 0
    finally:
        for fake in started:
            await fake.stop()


def main(argv: Sequence[str] | None = None) -> int:
    return asyncio.run(run(parser().parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
