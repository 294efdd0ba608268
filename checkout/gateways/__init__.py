"""The payment systems the shop can talk to. Each is one module implementing `Gateway`.

Imported with the shop's views, at start-up: imported on the first Pay or notification instead,
the sandbox's client (aiohttp, ~0.1 s of imports) would stall the event loop, and every socket
on it, in the middle of serving."""

from checkout.gateways.base import Gateway
from checkout.gateways.sandbox import SandboxGateway


def get_gateway(name: str = "sandbox") -> Gateway:
    if name == "sandbox":
        return SandboxGateway()
    raise LookupError(f"unknown payment gateway {name!r}")
