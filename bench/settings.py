"""The shop's settings with the bench-only URLs added (the old Pay view, the polling endpoint)."""

import os

from shop.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"

# Channels' stock layer, the "before" of shop.channel_layers.LocalChannelLayer.
if os.environ.get("BENCH_CHANNEL_LAYER") == "inmemory":
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
