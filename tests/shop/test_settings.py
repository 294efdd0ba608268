"""A server a test (or the benchmark) starts gets only what it asks for: every variable the settings
read is in `tests.servers.SHOP_ENV`, which a developer's exported environment cannot leak through."""

import re

from tests.servers import ROOT, SHOP_ENV

READS = re.compile(r'\b(?:os\.environ\.get|env_\w+)\(\s*"([A-Z0-9_]+)"')


def test_every_variable_the_settings_read_is_kept_from_test_servers():
    read = set(READS.findall((ROOT / "shop" / "settings.py").read_text()))
    assert {"DEBUG", "REDIS_URL", "DATABASE_POOL_SIZE", "RECONCILE_RATES"} <= read  # all found
    assert read - SHOP_ENV == set()
