"""Load limits: per-client rate limits, a bounded pool for CPU work, timeouts, a stream cap."""

from __future__ import annotations

import asyncio
import ipaddress
import math
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from sse_starlette import EventSourceResponse
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from qa.config import Settings
from qa.errors import QAError

T = TypeVar("T")

# Which requests spend which budget: asking is cheap to send and expensive to answer; admin calls
# start whole rebuilds, so their budget is far smaller.
ASK_ROUTES = {("POST", "/api/ask"), ("POST", "/api/chat"), ("POST", "/v1/chat/completions"),
              ("POST", "/")}
ADMIN_ROUTES = {("POST", "/api/index/rebuild"), ("POST", "/api/index/reload"), ("POST", "/admin"),
                ("POST", "/api/documents"), ("POST", "/upload")}


class LimitError(QAError):
    """A request refused for load reasons; the client may retry after `retry_after` seconds."""

    status = 503
    kind = "overloaded"

    def __init__(self, message: str, retry_after: int = 1):
        super().__init__(message)
        self.retry_after = max(1, retry_after)


class OverloadedError(LimitError):
    """Every worker is busy and the waiting line is full."""


class TimedOutError(LimitError):
    """The work took longer than the request timeout."""

    kind = "timeout"


class TooManyStreamsError(LimitError):
    """The cap on open event streams is reached."""

    kind = "too_many_streams"


class RateLimitedError(LimitError):
    """The client spent its budget of requests."""

    status = 429
    kind = "rate_limited"


class TokenBuckets:
    """One token bucket per client: `rate` tokens a second, at most `burst` saved up."""

    def __init__(self, rate: float, burst: int, max_clients: int = 10_000,
                 clock: Callable[[], float] = time.monotonic):
        self.rate = rate
        self.burst = burst
        self.max_clients = max_clients
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, client: str) -> float:
        """Spend one token; 0.0 if allowed, else the seconds until a token is free."""
        if self.rate <= 0:
            return 0.0
        now = self.clock()
        with self._lock:
            tokens, last = self._buckets.pop(client, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            wait = 0.0
            if tokens >= 1.0:
                tokens -= 1.0
            else:
                wait = (1.0 - tokens) / self.rate
            self._buckets[client] = (tokens, now)
            # Forget the least recently seen clients so memory stays bounded.
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
        return wait


def client_key(scope: Scope) -> str:
    """The client address a budget is kept for."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


class ProxyClient:
    """ASGI middleware: when the peer is a trusted proxy, the client is the right-most address
    in X-Forwarded-For that is not a trusted proxy too; from any other peer the header is
    ignored, so a client cannot pick the address its budget is kept for."""

    def __init__(self, app: ASGIApp, proxies: list[str]):
        self.app = app
        self.proxies = [ipaddress.ip_network(p, strict=False) for p in proxies]

    def trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address.strip().strip("[]"))
        except ValueError:
            return False
        return any(ip in net for net in self.proxies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        if scope["type"] == "http" and client and self.proxies and self.trusted(client[0]):
            forwarded = b",".join(v for k, v in scope["headers"] if k == b"x-forwarded-for")
            hops = [h.strip() for h in forwarded.decode("latin-1").split(",") if h.strip()]
            untrusted = [h for h in hops if not self.trusted(h)]
            if hops:
                scope = {**scope, "client": (untrusted[-1] if untrusted else hops[0], 0)}
        await self.app(scope, receive, send)


class Throttle:
    """ASGI middleware: refuses asks and admin calls over the client's budget with 429."""

    def __init__(self, app: ASGIApp, settings: Settings,
                 refuse: Callable[[Scope, LimitError], Awaitable[Response]]):
        self.app = app
        self.ask = TokenBuckets(settings.ask_rate, settings.ask_burst)
        self.admin = TokenBuckets(settings.admin_rate, settings.admin_burst)
        self.refuse = refuse

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            route = (scope["method"], scope["path"])
            buckets = (self.ask if route in ASK_ROUTES
                       else self.admin if route in ADMIN_ROUTES else None)
            wait = buckets.take(client_key(scope)) if buckets else 0.0
            if wait:
                what = "questions" if buckets is self.ask else "admin calls"
                exc = RateLimitedError(f"too many {what} from this client; retry in "
                                       f"{math.ceil(wait)} s", retry_after=math.ceil(wait))
                response = await self.refuse(scope, exc)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class WorkGate:
    """A fixed pool of worker threads with a bounded waiting line, so CPU work never blocks the
    event loop and a flood of requests gets 503 at once instead of an ever longer wait."""

    def __init__(self, workers: int, max_queue: int, timeout: float):
        self.workers = workers
        self.capacity = workers + max_queue
        self.timeout = timeout
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="qa-work")
        self._pending = 0
        self._lock = threading.Lock()

    @property
    def pending(self) -> int:
        """Jobs running or waiting."""
        return self._pending

    def _release(self, _: Future[Any]) -> None:
        with self._lock:
            self._pending -= 1

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` on a worker; OverloadedError if the line is full, TimedOutError if slow."""
        with self._lock:
            if self._pending >= self.capacity:
                raise OverloadedError("the server is busy answering other questions; retry soon",
                                      retry_after=2)
            self._pending += 1
        try:
            future = self._pool.submit(fn, *args)
        except BaseException:
            with self._lock:
                self._pending -= 1
            raise
        # The slot is freed when the thread is really done, not when the caller gives up, so a
        # timed-out job still counts against the pool while it runs.
        future.add_done_callback(self._release)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), self.timeout)
        except TimeoutError:
            raise TimedOutError(f"the question took longer than {self.timeout:g} s",
                                retry_after=5) from None

    def close(self) -> None:
        """Stop the workers, dropping jobs that have not started."""
        self._pool.shutdown(wait=True, cancel_futures=True)


class StreamGate:
    """Counts open event streams and refuses new ones over the cap."""

    def __init__(self, limit: int):
        self.limit = limit
        self.open = 0
        self._lock = threading.Lock()

    def acquire(self) -> None:
        """Claim a stream slot, or TooManyStreamsError."""
        with self._lock:
            if self.open >= self.limit:
                raise TooManyStreamsError(f"{self.limit} streams are already open; retry soon",
                                          retry_after=2)
            self.open += 1

    def release(self) -> None:
        with self._lock:
            self.open -= 1


# A client that stops reading (its connection still open) gives its slot back after this long.
STREAM_SEND_TIMEOUT = 30.0


class CountedStream(EventSourceResponse):
    """Server-sent events (sse-starlette: event framing, keep-alive pings, ending when the
    client leaves or the server shuts down) holding a stream slot until the stream ends."""

    def __init__(self, gate: StreamGate, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.gate = gate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.gate.release()


def stream(request: Request, events: AsyncIterator[Any], **kwargs: Any) -> CountedStream:
    """An event stream counted against the app's cap (TooManyStreamsError when it is reached).

    `events` yields the `data` of each event as a str, or sse_starlette `ServerSentEvent`s; it
    runs on the event loop, so a stream holds no thread while it waits."""
    gate: StreamGate = request.app.state.streams
    gate.acquire()
    try:
        return CountedStream(gate, events, sep="\n", send_timeout=STREAM_SEND_TIMEOUT, **kwargs)
    except BaseException:
        gate.release()
        raise


async def work(request: Request, fn: Callable[..., T], *args: Any) -> T:
    """Run CPU-heavy `fn(*args)` through the app's bounded pool."""
    gate: WorkGate = request.app.state.gate
    return await gate.run(fn, *args)
