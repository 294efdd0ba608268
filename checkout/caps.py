"""How many status sockets this process lets open: per shopper, per order, per address, in all.

A page needs one socket (two while a tab reconnects), so a session or an order holding dozens is a
script, and every socket costs memory and a place on the watchlist. The caps follow the shopper
(their session's token, WS_MAX_PER_SESSION) and the order (WS_MAX_PER_ORDER). The client address
only has a high ceiling (WS_MAX_PER_CLIENT): thousands of shoppers share one behind a carrier-grade
NAT or an office, and all of them behind a proxy whose X-Forwarded-For is not read. WS_MAX_SOCKETS
bounds the process's total. 0 means no limit, for each.

A socket takes its place for the address and the process before anything is read, and its place for
the session and the order once the owner check has named them; a socket over any cap is refused
before it is accepted and keeps nothing.
"""

from collections import Counter
from dataclasses import dataclass

from django.conf import settings


@dataclass
class Held:
    """What one socket counts against the caps, so that it gives back exactly that."""

    client: str
    shopper: str | None = None
    biz: str | None = None


class SocketCaps:
    def __init__(self) -> None:
        self.total = 0
        self.per_client: Counter[str] = Counter()
        self.per_session: Counter[str] = Counter()
        self.per_order: Counter[str] = Counter()

    def take_client(self, client: str) -> Held | None:
        """A place in the process and for the client's address; None if either is full."""
        if full(self.total, settings.WS_MAX_SOCKETS) or full(
            self.per_client[client], settings.WS_MAX_PER_CLIENT
        ):
            return None
        self.total += 1
        self.per_client[client] += 1
        return Held(client)

    def take_shopper(self, held: Held, *, shopper: str, biz: str) -> bool:
        """A place for the shopper's session and for the order; False if either is full."""
        if full(self.per_session[shopper], settings.WS_MAX_PER_SESSION) or full(
            self.per_order[biz], settings.WS_MAX_PER_ORDER
        ):
            return False
        self.per_session[shopper] += 1
        self.per_order[biz] += 1
        held.shopper, held.biz = shopper, biz
        return True

    def give_back(self, held: Held) -> None:
        self.total -= 1
        release(self.per_client, held.client)
        if held.shopper is not None and held.biz is not None:
            release(self.per_session, held.shopper)
            release(self.per_order, held.biz)


def full(count: int, limit: int) -> bool:
    return limit > 0 and count >= limit


def release(counter: Counter[str], key: str) -> None:
    # Dropped at zero, so that a process's counters stay as small as its open sockets.
    counter[key] -= 1
    if counter[key] <= 0:
        del counter[key]


caps = SocketCaps()


def client_of(scope: dict) -> str:
    client = scope.get("client")
    return client[0] if client else "unknown"
