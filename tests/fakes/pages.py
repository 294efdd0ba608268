"""The shopper's side of the fakes: small HTML pages with a form of buttons, so that a person or a
browser test can pay (or decline) without the provider's app. Each action answers with a redirect
to the page, which then shows the payment as it stands and every notice sent about it, with the
merchant's answers."""

from collections.abc import Iterable, Sequence
from html import escape

from aiohttp import web

from tests.fakes.delivery import Delivery

STYLE = """
body { font: 16px/1.5 system-ui, sans-serif; margin: 0; background: #f4f5f7; color: #1c1e21; }
main { max-width: 42rem; margin: 2rem auto; padding: 1.5rem; background: #fff; border-radius: 8px; }
.provider { color: #555; margin: 0; }
.amount { font-size: 2rem; margin: .5rem 0; }
form { display: flex; gap: .75rem; flex-wrap: wrap; margin: 1rem 0; }
button { font: inherit; padding: .6rem 1.4rem; border-radius: 6px; border: 1px solid #888;
  background: #fff; cursor: pointer; }
button[value=pay] { background: #1677ff; border-color: #1677ff; color: #fff; }
table { border-collapse: collapse; width: 100%; }
td, th { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid #ddd; }
samp { white-space: pre-wrap; word-break: break-all; }
.accepted { color: #0a7d28; } .refused { color: #b3261e; }
"""


def page(provider: str, title: str, body: str, *, status: int = 200) -> web.Response:
    html = (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)} · {escape(provider)} (local fake)</title>"
        f"<style>{STYLE}</style></head><body><main>"
        f'<p class="provider">{escape(provider)} · local fake · <a href="/">all payments</a></p>'
        f"<h1>{escape(title)}</h1>{body}</main></body></html>\n"
    )
    return web.Response(status=status, text=html, content_type="text/html", charset="utf-8")


def missing(provider: str, what: str) -> web.Response:
    return page(provider, "Not found", f"<p>No such {escape(what)}.</p>", status=404)


def money(cents: int, currency: str) -> str:
    symbol = "¥" if currency.upper() == "CNY" else ""
    return f"{symbol}{cents // 100}.{cents % 100:02d} {currency.upper()}"


def status_line(label: str, status: str) -> str:
    return (
        f'<p>{escape(label)}: <strong id="status" data-status="{escape(status)}">'
        f"{escape(status)}</strong></p>"
    )


def actions(target: str, choices: Sequence[tuple[str, str]]) -> str:
    """One form, one submit button per (action, label): `<button name="action" value=...>`."""
    buttons = "".join(
        f'<button type="submit" name="action" value="{escape(value)}">{escape(label)}</button>'
        for value, label in choices
    )
    return f'<form method="post" action="{escape(target)}">{buttons}</form>'


def note(text: str) -> str:
    return f'<p class="note">{escape(text)}</p>'


def deliveries(sent: Iterable[Delivery]) -> str:
    """Every notice sent about the payment: each attempt's time, the answer and its verdict."""
    items = []
    for delivery in sent:
        attempts = "".join(
            f'<li class="attempt" data-status="{attempt.status or ""}" '
            f'data-accepted="{str(attempt.accepted).lower()}">'
            f"{attempt.at:%H:%M:%S} → "
            + (f"HTTP {attempt.status}" if attempt.status is not None else "no answer")
            + f" <samp>{escape(attempt.answer)}</samp> "
            + (
                '<span class="accepted">accepted</span>'
                if attempt.accepted
                else '<span class="refused">not accepted</span>'
            )
            + "</li>"
            for attempt in delivery.attempts
        )
        retry = (
            f" (next attempt at {delivery.next_at:%H:%M:%S})"
            if delivery.next_at is not None
            else ""
        )
        items.append(
            f'<li class="delivery" data-state="{escape(delivery.state)}">'
            f"{escape(delivery.what)} to <code>{escape(delivery.url)}</code>: "
            f"<strong>{escape(delivery.state)}</strong>{escape(retry)}<ol>{attempts}</ol></li>"
        )
    if not items:
        return '<section id="deliveries"><h2>Notices</h2><p>None sent.</p></section>'
    return f'<section id="deliveries"><h2>Notices</h2><ol>{"".join(items)}</ol></section>'


def listing(headings: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A table; cells are HTML already escaped by the caller."""
    head = "".join(f"<th>{escape(heading)}</th>" for heading in headings)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    if not body:
        return "<p>None yet: press Pay in the shop.</p>"
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
