"""How many status streams one client may hold open in this process.

A page needs one socket (two while a tab reconnects), so a client with dozens is a script, and
every socket it holds costs memory and a place on the watchlist. Beyond WS_MAX_PER_CLIENT a new
socket is refused before it is accepted, so one client's flood cannot starve the others. The
client is the peer address: behind a reverse proxy, daphne's `--proxy-headers` takes it from
X-Forwarded-For (deploy/supervisord.conf).
"""

from collections import Counter

from django.conf import settings


class ClientSlots:
    def __init__(self) -> None:
        self.open: Counter[str] = Counter()

    def take(self, client: str) -> bool:
        """Take a slot for `client`; False if it already holds its share (0 means no limit)."""
        limit = settings.WS_MAX_PER_CLIENT
        if limit and self.open[client] >= limit:
            return False
        self.open[client] += 1
        return True

    def give_back(self, client: str) -> None:
        self.open[client] -= 1
        if self.open[client] <= 0:
            del self.open[client]


slots = ClientSlots()


def client_of(scope: dict) -> str:
    client = scope.get("client")
    return client[0] if client else "unknown"
