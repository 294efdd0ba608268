"""How the sandbox signs a notification: `Sandbox-Signature: t=<unix seconds>,v1=<hex>`, where v1
is HMAC-SHA256 over `"<t>." + raw body` with the notify secret, as Stripe signs its webhooks
(contract section 4). Verifying is the merchant's side (the shop's own code)."""

import hashlib
import hmac

HEADER = "Sandbox-Signature"


def sign(body: bytes, secret: str, timestamp: int) -> str:
    """The header value for `body`, signed at `timestamp`."""
    message = str(timestamp).encode() + b"." + body
    return f"t={timestamp},v1={hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()}"
