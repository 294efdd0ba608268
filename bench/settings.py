"""The shop's settings with the old synchronous Pay view added (gunicorn's side of the bench)."""

from shop.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
