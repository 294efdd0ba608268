"""`python -m bench.providers [--quick]`: the CPU one notification's verification costs, per
payment provider, beside the sandbox's; writes its own section of BENCHMARKS.md and no other.

Each gateway's `verify_notice(headers=..., body=...)` runs in this process (no server, no
database) on genuine notices freshly signed as each provider signs them: the sandbox's by its own
signer (`bench.fixtures`, `sandbox/signature.py`), Alipay's, WeChat Pay's and Stripe's by the fakes
in `tests/fakes/`, with keys made at run time. The gateways are configured here, not from
settings; Django's settings serve the sandbox's notify secret only. `bench.run` runs this as a
process of its own (`--json`) and `bench.report` writes the section with the rest.
"""

import argparse
import base64
import json
import os
import re
import statistics
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl

HEADING = "## 5. Notification CPU per provider"
# Distinct notices per provider and round, signed just before the round's timing and cycled.
POOL = 16

Notice = tuple[dict[str, str], bytes]


@dataclass
class Provider:
    name: str
    label: str
    checked: str  # what its verification does, for the report
    gateway: object
    notice: Callable[[], Notice]  # a genuine notice, freshly signed
    # The cryptographic steps of one notice's verification alone, each a call to time.
    steps: Callable[[dict[str, str], bytes], dict[str, Callable[[], object]]]


def signed_json_steps(
    name: str, secrets: list[str]
) -> Callable[[dict[str, str], bytes], dict[str, Callable[[], object]]]:
    """The steps of a `t=...,v1=...` HMAC header (`name`) over a JSON body: the sandbox's and
    Stripe's."""
    from checkout.gateways import signed_header

    def steps(headers: dict[str, str], body: bytes) -> dict[str, Callable[[], object]]:
        header = headers[name]
        return {
            "signature": lambda: signed_header.verify(header, body, secrets, now=now()),
            "parse": lambda: json.loads(body),
        }

    return steps


def sandbox() -> Provider:
    from django.conf import settings

    from bench import fixtures
    from checkout.gateways.sandbox import HEADER, SandboxGateway

    secrets = [settings.SANDBOX_NOTIFY_SECRET, *settings.SANDBOX_NOTIFY_SECRETS_OLD]

    def notice() -> Notice:
        body = fixtures.notice(uuid.uuid4().hex, "pay_" + uuid.uuid4().hex[:24])
        return fixtures.signed(body), body

    return Provider(
        "sandbox",
        "sandbox",
        f"HMAC-SHA256 over `t.body` ({len(secrets)} secret), JSON",
        SandboxGateway(),
        notice,
        signed_json_steps(HEADER, secrets),
    )


def alipay() -> Provider:
    from checkout.gateways import rsa
    from checkout.gateways.alipay import AlipayConfig, AlipayGateway, string_to_sign
    from tests.fakes import key_pair
    from tests.fakes.alipay import FakeAlipay, Trade

    app_id = "2021000000000001"
    (app_private, app_public), (alipay_private, alipay_public) = key_pair(), key_pair()
    fake = FakeAlipay(app_id=app_id, app_public_key=app_public, alipay_private_key=alipay_private)
    config = AlipayConfig(app_id=app_id, private_key_pem=app_private, public_key_pem=alipay_public)
    public = rsa.public_key(alipay_public)

    def notice() -> Notice:
        biz = uuid.uuid4().hex
        fake.trades[biz] = Trade(
            out_trade_no=biz,
            total_amount="19.99",
            subject="Bench",
            notify_url="https://shop.example/payments/notify/alipay/",
            qr_code="https://qr.alipay.com/bax0bench",
        )
        fake.pay(biz)
        form = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
        return form, fake.notice(biz)

    def steps(headers: dict[str, str], body: bytes) -> dict[str, Callable[[], object]]:
        fields = dict(parse_qsl(body.decode()))
        signature, _ = fields.pop("sign"), fields.pop("sign_type")
        message = string_to_sign(fields, keep_empty=True)
        form = body.decode()
        return {
            "signature": lambda: rsa.verifies(public, message, signature),
            # As the gateway reads the form (urllib's parse_qsl, pure Python).
            "parse": lambda: parse_qsl(form, keep_blank_values=True, strict_parsing=True),
        }

    return Provider(
        "alipay",
        "Alipay",
        "RSA2 (RSA-2048, SHA-256) over the sorted form fields, the form",
        AlipayGateway(config),
        notice,
        steps,
    )


def wechatpay() -> Provider:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from checkout.gateways import rsa
    from checkout.gateways.wechatpay import WechatPayConfig, WechatPayGateway, answer_message
    from tests.fakes.wechatpay import FakeWechatPay, Trade

    fake = FakeWechatPay()  # its merchant and platform keys made now
    config = WechatPayConfig(
        mchid=fake.mchid,
        appid=fake.appid,
        apiv3_key=fake.apiv3_key,
        cert_serial=fake.cert_serial,
        private_key=fake.merchant_key,
        public_key_id=fake.public_key_id,
        public_key=fake.platform_key.public_key(),
    )
    aead = AESGCM(fake.apiv3_key.encode())

    def notice() -> Notice:
        biz = uuid.uuid4().hex
        fake.trades[biz] = Trade(
            appid=fake.appid,
            mchid=fake.mchid,
            description="Bench",
            out_trade_no=biz,
            total=1999,
            notify_url="https://shop.example/payments/notify/wechatpay/",
            time_expire="2030-01-01T00:00:00+08:00",
            code_url="weixin://wxpay/bizpayurl?pr=bench",
        )
        fake.pay(biz)
        return fake.notice(biz)

    def steps(headers: dict[str, str], body: bytes) -> dict[str, Callable[[], object]]:
        message = answer_message(headers["Wechatpay-Timestamp"], headers["Wechatpay-Nonce"], body)
        signature = headers["Wechatpay-Signature"]
        resource = json.loads(body)["resource"]
        sealed = (
            resource["nonce"].encode(),
            base64.b64decode(resource["ciphertext"]),
            resource["associated_data"].encode(),
        )
        return {
            "signature": lambda: rsa.verifies(config.public_key, message, signature),
            "decrypt": lambda: aead.decrypt(*sealed),
            "parse": lambda: json.loads(body),
        }

    return Provider(
        "wechatpay",
        "WeChat Pay",
        "RSA-2048 SHA-256 over the headers and body, AES-256-GCM of the resource, JSON twice",
        WechatPayGateway(config),
        notice,
        steps,
    )


def stripe() -> Provider:
    from checkout.gateways.stripe import HEADER, StripeConfig, StripeGateway
    from tests.fakes.stripe import FakeStripe

    fake = FakeStripe()  # its secret key and webhook secret made now
    config = StripeConfig(secret_key=fake.secret_key, webhook_secret=fake.webhook_secret)

    def notice() -> Notice:
        # A Checkout Session as the fake's create makes one, paid on the hosted page.
        session = fake.open_session(
            client_reference_id=uuid.uuid4().hex,
            amount=1999,
            currency="cny",
            success_url="https://shop.example/orders/",
            cancel_url="https://shop.example/orders/",
        )
        fake.complete(session["id"])
        return fake.notice(session["id"], "checkout.session.completed")

    return Provider(
        "stripe",
        "Stripe",
        "HMAC-SHA256 over `t.body` (`Stripe-Signature`), the JSON event",
        StripeGateway(config),
        notice,
        signed_json_steps(HEADER, [config.webhook_secret]),
    )


def now() -> int:
    return int(time.time())


def pool(provider: Provider) -> list[Notice]:
    """POOL fresh notices, each verified once (and so known genuine) before any is timed."""
    from checkout.models import PaymentStatus

    notices = [provider.notice() for _ in range(POOL)]
    for headers, body in notices:
        notice = provider.gateway.verify_notice(headers=headers, body=body)
        if notice.payment.status != PaymentStatus.SUCCEEDED:
            raise RuntimeError(f"{provider.name}: a genuine notice read as {notice.payment}")
    return notices


def cpu_ms(calls: list[Callable[[], object]]) -> float:
    """CPU milliseconds per call, over all the calls in turn."""
    start = time.process_time()
    for call in calls:
        call()
    return (time.process_time() - start) * 1000 / len(calls)


def measure(*, iterations: int, rounds: int, warm: int) -> dict:
    """Each provider's CPU per notification, and per step, the median of `rounds`; in each round
    the providers one after another, each on a pool of notices signed just before."""
    providers = [sandbox(), alipay(), wechatpay(), stripe()]
    rows: dict[str, list[dict]] = {p.name: [] for p in providers}
    sizes: dict[str, list[int]] = {p.name: [] for p in providers}
    for _ in range(rounds):
        for provider in providers:
            notices = pool(provider)
            sizes[provider.name] += [len(body) for _, body in notices]
            verify = provider.gateway.verify_notice
            calls = [
                lambda h=h, b=b: verify(headers=h, body=b)
                for h, b in (notices[i % POOL] for i in range(iterations))
            ]
            cpu_ms(calls[:warm])
            ms = cpu_ms(calls)
            steps = [provider.steps(*notice) for notice in notices]
            rows[provider.name].append(
                {
                    "ms": ms,
                    "steps": {
                        step: cpu_ms([steps[i % POOL][step] for i in range(iterations)])
                        for step in steps[0]
                    },
                }
            )
    cells = {}
    for provider in providers:
        mine, sandbox_rows = rows[provider.name], rows["sandbox"]
        cells[provider.name] = {
            "label": provider.label,
            "checked": provider.checked,
            "bytes": statistics.median(sizes[provider.name]),
            "rounds_ms": [row["ms"] for row in mine],
            "ms": statistics.median(row["ms"] for row in mine),
            # Each round's ratio to the sandbox's in the same round, median over the rounds.
            "ratio": statistics.median(
                row["ms"] / base["ms"] if base["ms"] else float("nan")
                for row, base in zip(mine, sandbox_rows, strict=True)
            ),
            "steps_ms": {
                step: statistics.median(row["steps"][step] for row in mine)
                for step in mine[0]["steps"]
            },
        }
    return {
        "iterations": iterations,
        "rounds": rounds,
        "warm": warm,
        "pool": POOL,
        "providers": cells,
    }


def environment() -> dict:
    import cryptography
    from cryptography.hazmat.backends.openssl import backend

    from bench import report

    return {
        **report.host(),
        "crypto": f"cryptography {cryptography.__version__} ({backend.openssl_version_text()})",
        "loop": report.yardstick()["loop"],
    }


def run(*, quick: bool, iterations: int, rounds: int, warm: int) -> dict:
    """The cell: its environment and its figures."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")
    os.environ.setdefault("DEBUG", "1")  # alone, the development settings (the notify secret)
    import django

    django.setup()
    return {
        "quick": quick,
        "environment": environment(),
        **measure(iterations=iterations, rounds=rounds, warm=warm),
    }


def replace_section(text: str, section: list[str]) -> str:
    """`text` with this cell's section put in place of its old one (up to the next `## `
    heading), or before `## Method` if it has none yet, or at the end; the rest unchanged."""
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if re.match(r"## (\d+\. )?Notification CPU", line)]
    if starts:
        start = starts[0]
        end = next(
            (i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines)
        )
    else:
        start = end = next((i for i, line in enumerate(lines) if line == "## Method"), len(lines))
    return "\n".join(lines[:start] + section + lines[end:]) + "\n"


def main(argv: list[str] | None = None) -> dict:
    from bench import report
    from bench.run import FULL, QUICK

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny counts, for `make test`")
    parser.add_argument("--iterations", type=int, help="notices timed per provider and round")
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--warm", type=int, help="notices verified before each timing")
    parser.add_argument("--json", action="store_true", help="print the figures, write nothing")
    parser.add_argument("--out", default=str(report.ROOT / "BENCHMARKS.md"))
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    cell = run(
        quick=args.quick,
        iterations=args.iterations or sizes.notices,
        rounds=args.rounds or sizes.notice_rounds,
        warm=sizes.notices_warm if args.warm is None else args.warm,
    )
    if args.json:
        print(json.dumps(cell))
        return cell
    out = Path(args.out)
    text = out.read_text() if out.exists() else ""
    out.write_text(replace_section(text, report.providers_section(cell)))
    for name, figures in cell["providers"].items():
        print(
            f"bench: {name}: {figures['ms']:.4f} ms of CPU per notification, "
            f"{figures['ratio']:.2f}x the sandbox's"
        )
    print(f"bench: wrote its section of {out}, nothing else")
    return cell


if __name__ == "__main__":
    main()
