"""A server process loads at start-up what serving needs: the first Pay, notification or push
imports no module and compiles no template on the event loop, where it would stall every socket
(the payment system's client alone took ~0.1 s). And start-up leaves none of Django's per-thread
storage in the context every connection's task inherits."""

import json
import os
import subprocess
import sys

from tests.servers import ROOT

FIRST_REQUESTS = """
import contextvars, json, sys

import shop.asgi  # start-up, as every server process runs it
from django.template import base

# Django's per-thread storage (asgiref's Local), which asgiref copies on each trip to a thread
inherited = [var.name for var in contextvars.copy_context() if var.name == "asgiref.local"]
loaded, compiled = set(sys.modules), []
compile_template = base.Template.__init__


def counted(self, *args, **kwargs):
    compiled.append(str(args[1] if len(args) > 1 else kwargs.get("origin")))
    compile_template(self, *args, **kwargs)


base.Template.__init__ = counted

from checkout.gateways import get_gateway
from checkout.models import OrderStatus
from checkout.panels import panel_order, panel_render

get_gateway()  # what a Pay and a notification call first
for status in OrderStatus.values:  # a push of each status, rendered as a socket renders it
    state = {"biz": "0" * 32, "version": 1, "status": status, "amount": 1999, "currency": "CNY",
             "product": "Tea", "cashier_url": "http://127.0.0.1:8000/sandbox/cashier/pay_1"}
    panel_render(panel_order(state), language="en")
new = {"imported": sorted(set(sys.modules) - loaded), "compiled": compiled}
print(json.dumps({"inherited": inherited, **new}))
"""


def test_the_first_requests_import_and_compile_nothing_and_inherit_no_context():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "shop.settings", "SANDBOX_ENABLED": "0"}
    run = subprocess.run(
        [sys.executable, "-c", FIRST_REQUESTS],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout.strip().splitlines()[-1]) == {
        "inherited": [],
        "imported": [],
        "compiled": [],
    }
