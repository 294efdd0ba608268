"""Notices sent as the payment systems send them: POSTed to the merchant's address and, until the
merchant acknowledges one in the provider's own way, sent again on a schedule (the real ones retry
for hours or days; a fake's schedule is short). Each attempt is built afresh by its `build`, since
the providers sign every attempt with the time it is sent, and merchants refuse a signature more
than a few minutes old."""

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

# Seconds between attempts after the first: five more tries over about two minutes.
DEFAULT_DELAYS = (2.0, 5.0, 15.0, 30.0, 60.0)
ANSWER_SHOWN = 500  # characters of an answer kept to show

Build = Callable[[], tuple[dict[str, str], bytes]]
Accepts = Callable[[int, bytes], bool]


@dataclass
class Attempt:
    at: datetime
    status: int | None  # None when no answer came
    answer: str  # the answer's body (its start), or why none came
    accepted: bool


@dataclass
class Delivery:
    what: str
    url: str
    attempts: list[Attempt] = field(default_factory=list)
    next_at: datetime | None = None  # the next attempt, while one is due

    @property
    def accepted(self) -> bool:
        return any(attempt.accepted for attempt in self.attempts)

    @property
    def state(self) -> str:
        if self.accepted:
            return "accepted"
        if self.next_at is not None:
            return "retrying"
        return "given up" if self.attempts else "sending"


class Notifier:
    """Sends deliveries on one HTTP client; `close` cancels the retries still waiting."""

    def __init__(self, delays: Sequence[float] = DEFAULT_DELAYS, timeout: float = 10.0) -> None:
        self.delays = tuple(delays)
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task] = set()

    async def deliver(self, what: str, url: str, build: Build, accepts: Accepts) -> Delivery:
        """Send now and wait for the answer; retries, if needed, go on in the background."""
        delivery = Delivery(what, url)
        if await self._attempt(delivery, build, accepts) or not self.delays:
            return delivery
        # Due from now on, so that whoever shows the delivery next sees it waiting.
        delivery.next_at = datetime.now(UTC) + timedelta(seconds=self.delays[0])
        self._spawn(self._retry(delivery, build, accepts, self.delays))
        return delivery

    def deliver_soon(self, what: str, url: str, build: Build, accepts: Accepts) -> Delivery:
        """Send in the background, as a provider does after answering an API call."""
        delivery = Delivery(what, url)
        self._spawn(self._retry(delivery, build, accepts, (0.0, *self.delays)))
        return delivery

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _retry(
        self, delivery: Delivery, build: Build, accepts: Accepts, delays: Sequence[float]
    ) -> None:
        try:
            for delay in delays:
                delivery.next_at = datetime.now(UTC) + timedelta(seconds=delay)
                await asyncio.sleep(delay)
                if await self._attempt(delivery, build, accepts):
                    return
        finally:
            delivery.next_at = None

    async def _attempt(self, delivery: Delivery, build: Build, accepts: Accepts) -> bool:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        at = datetime.now(UTC)
        headers, body = build()
        try:
            async with self._session.post(
                delivery.url,
                data=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                allow_redirects=False,  # a redirect is not an acknowledgement
            ) as response:
                content = await response.read()
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            delivery.attempts.append(Attempt(at, None, f"{type(error).__name__}: {error}", False))
            return False
        accepted = accepts(response.status, content)
        shown = content.decode("utf-8", errors="replace")[:ANSWER_SHOWN]
        delivery.attempts.append(Attempt(at, response.status, shown, accepted))
        return accepted
