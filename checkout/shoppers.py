"""Who the shopper is: a random token kept in their session, owner of the orders they create."""

import secrets

SESSION_KEY = "shopper"


def shopper_token(session) -> str:
    """The session's shopper token, created on first use."""
    token = session.get(SESSION_KEY)
    if not token:
        token = session[SESSION_KEY] = secrets.token_hex(16)
    return token


def shopper_of(session) -> str | None:
    """The token if this session has one; never creates one."""
    return session.get(SESSION_KEY) if session is not None else None
