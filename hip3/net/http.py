"""The bot's HTTP client for POST /info and POST /exchange, on Trio through httpx.

Every attempt first takes its weight from the shared `WeightBudget` (protocol reference §8), is bounded by
`timeout_s` on Trio's clock, and ends in a parsed JSON body or one typed `HttpError`. Failures that may pass
are retried with exponential backoff and full jitter: the n-th retry waits a uniform random time in
[0, min(retry_max_s, retry_base_s * 2**(n-1))].

What is retried:

- /info is read-only, so it is retried on 429, 5xx and every transport failure (refused, reset, dropped
  keep-alive connection — protocol reference §10 gotcha 8 — and timeouts).
- /exchange carries a signed action that the exchange may execute as soon as it has read it; sending it twice
  could place an order twice. It is retried only when the exchange cannot have seen it:
  * HTTP 429, which the CloudFront/nginx front answers before the exchange sees the request (§8);
  * `httpx.ConnectError` and `httpx.ConnectTimeout` (no connection was made) and `httpx.PoolTimeout` (no
    connection was free), all raised before a byte of the request is written.
  Everything else fails at once: a dropped connection (`RemoteProtocolError`, `ReadError`, `WriteError`), a
  read or write timeout, our own `timeout_s`, and 5xx (a gateway may answer 502/504 after forwarding). The
  caller learns what happened from orderStatus by cloid or the user stream, never from a blind resend.
- 4xx other than 429 (`HttpRejected`) and a 200 body that is not JSON (`HttpBadJson`) are never retried.

Messages and logs name the endpoint, attempt, status and delay; they never contain a request body (an
/exchange body carries a signature and the account's intent).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from random import Random
from types import TracebackType
from typing import Any, Final

import httpx
import orjson
import structlog
import trio

from hip3.net.weight_budget import WeightBudget, exchange_weight, extra_info_weight, info_weight

log = structlog.get_logger(__name__)

INFO: Final = "/info"
EXCHANGE: Final = "/exchange"
ENDPOINTS: Final = (INFO, EXCHANGE)
JSON_HEADERS: Final = {"content-type": "application/json"}
HTTP_TOO_MANY_REQUESTS: Final = 429
TEXT_SHOWN: Final = 300  # characters of a response text kept in an error message
MAX_BACKOFF_DOUBLINGS: Final = 60

# Raised before any byte of the request is written, so even an /exchange action can be sent again.
NOT_SENT_ERRORS: Final = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class HttpError(Exception):
    """An /info or /exchange request that did not produce a JSON body; says what and where, never the body."""

    status: int | None = None

    def __init__(self, endpoint: str, detail: str) -> None:
        super().__init__(endpoint, detail)
        self.endpoint = endpoint
        self.detail = detail
        self.attempts = 1

    def __str__(self) -> str:
        tries = f" (gave up after {self.attempts} attempts)" if self.attempts > 1 else ""
        return f"POST {self.endpoint}: {self.detail}{tries}"


class HttpRateLimited(HttpError):
    """HTTP 429 (body `null`) on the last attempt."""

    status = HTTP_TOO_MANY_REQUESTS

    def __init__(self, endpoint: str) -> None:
        super().__init__(endpoint, "HTTP 429 rate limited")


class HttpServerError(HttpError):
    """HTTP 5xx on the last attempt."""

    def __init__(self, endpoint: str, status: int, text: str) -> None:
        super().__init__(endpoint, f"HTTP {status} server error{_quoted(text)}")
        self.status = status
        self.text = text


class HttpTransportError(HttpError):
    """No response: connection refused, reset or dropped, or a timeout, on the last attempt."""

    def __init__(self, endpoint: str, reason: str, *, may_have_been_sent: bool) -> None:
        super().__init__(endpoint, reason)
        self.may_have_been_sent = may_have_been_sent


class HttpRejected(HttpError):
    """A 4xx other than 429, e.g. 422 with the exchange's text; the same request would fail again."""

    def __init__(self, endpoint: str, status: int, text: str) -> None:
        super().__init__(endpoint, f"HTTP {status} rejected{_quoted(text)}")
        self.status = status
        self.text = text


class HttpBadJson(HttpError):
    """A 2xx response whose body is not JSON."""

    def __init__(self, endpoint: str, status: int, content: bytes) -> None:
        start = content[:TEXT_SHOWN].decode("utf-8", "replace")
        super().__init__(
            endpoint, f"HTTP {status} with a body that is not JSON ({len(content)} bytes){_quoted(start)}"
        )
        self.status = status
        self.content = content


COUNTER_OF_ERROR: Final[Mapping[type[HttpError], str]] = {
    HttpRateLimited: "rate_limited",
    HttpServerError: "server_errors",
    HttpTransportError: "transport_errors",
    HttpRejected: "rejected",
    HttpBadJson: "bad_json",
}
COUNTERS: Final = ("requests", "retries", *COUNTER_OF_ERROR.values())


def _quoted(text: str) -> str:
    text = text.strip()
    if not text:
        return ""
    shown = text if len(text) <= TEXT_SHOWN else text[:TEXT_SHOWN] + "…"
    return f": {shown!r}"


def may_retry(endpoint: str, error: HttpError) -> bool:
    """Whether a failed attempt may be sent again (the rules in the module docstring)."""
    if isinstance(error, HttpRateLimited):
        return True
    if endpoint == INFO:
        return isinstance(error, HttpServerError | HttpTransportError)
    return isinstance(error, HttpTransportError) and not error.may_have_been_sent


class HttpClient:
    """POST /info and /exchange with a weight budget, a timeout on Trio's clock, retries and typed errors."""

    def __init__(
        self,
        base_url: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        budget: WeightBudget | None = None,
        timeout_s: float = 10.0,
        retries: int = 3,
        retry_base_s: float = 0.5,
        retry_max_s: float = 10.0,
        random: Random | None = None,
    ) -> None:
        if timeout_s <= 0 or retries < 0 or retry_base_s < 0 or retry_max_s < 0:
            raise ValueError("timeout_s must be positive; retries and retry delays must not be negative")
        self._client = httpx.AsyncClient(base_url=base_url, transport=transport, timeout=timeout_s)
        self._budget = budget if budget is not None else WeightBudget()
        self._timeout_s = timeout_s
        self._retries = retries
        self._retry_base_s = retry_base_s
        self._retry_max_s = retry_max_s
        self._random = random if random is not None else Random()
        self._counts: Counter[str] = Counter()

    async def info(self, request: Mapping[str, Any]) -> Any:
        """POST /info; charges the extra weight of list responses (userFills, …) once the body is in."""
        body = await self._post(INFO, request, info_weight(request))
        self._budget.charge(extra_info_weight(str(request.get("type", "")), body))
        return body

    async def exchange(self, body: Mapping[str, Any], *, batch_length: int = 1) -> Any:
        """POST /exchange; retried only when the exchange cannot have seen the action (module docstring)."""
        return await self._post(EXCHANGE, body, exchange_weight(batch_length))

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> HttpClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    @property
    def stats(self) -> Mapping[str, int]:
        """Totals (`requests`, `retries`, `rate_limited`, …) and the same per endpoint (`info.requests`, …).

        `requests` counts attempts sent, retries included.
        """
        totals = {name: self._counts[name] for name in COUNTERS}
        per_endpoint = {
            f"{endpoint.lstrip('/')}.{name}": self._counts[f"{endpoint}.{name}"]
            for endpoint in ENDPOINTS
            for name in COUNTERS
        }
        return totals | per_endpoint

    async def _post(self, endpoint: str, payload: Mapping[str, Any], weight: int) -> Any:
        # orjson keeps dict key order (the action hash depends on it); it takes a dict, not any Mapping.
        content = orjson.dumps(payload if isinstance(payload, dict) else dict(payload))
        attempt = 1
        while True:
            await self._budget.acquire(weight)
            try:
                return await self._send_once(endpoint, content)
            except HttpError as error:
                error.attempts = attempt
                self._count(endpoint, COUNTER_OF_ERROR[type(error)])
                delay = self._delay_before_retry(endpoint, error)
            await trio.sleep(delay)
            attempt += 1

    async def _send_once(self, endpoint: str, content: bytes) -> Any:
        self._count(endpoint, "requests")
        try:
            # httpx's timeout bounds each phase; this bounds the whole attempt, on Trio's clock.
            with trio.fail_after(self._timeout_s):
                response = await self._client.post(endpoint, content=content, headers=JSON_HEADERS)
        except trio.TooSlowError:
            reason = f"no response within {self._timeout_s} s"
            raise HttpTransportError(endpoint, reason, may_have_been_sent=True) from None
        except NOT_SENT_ERRORS as exc:
            raise HttpTransportError(endpoint, _describe(exc), may_have_been_sent=False) from exc
        except httpx.TransportError as exc:
            raise HttpTransportError(endpoint, _describe(exc), may_have_been_sent=True) from exc
        return _parse(endpoint, response)

    def _delay_before_retry(self, endpoint: str, error: HttpError) -> float:
        """The backoff before the next attempt, or re-raise `error` when it must not be retried."""
        fields = {"endpoint": endpoint, "attempt": error.attempts, "status": error.status}
        if error.attempts > self._retries or not may_retry(endpoint, error):
            log.warning("http_give_up", **fields, error=str(error))
            raise error
        delay = self._backoff_s(error.attempts)
        self._count(endpoint, "retries")
        log.info("http_retry", **fields, delay_s=delay, error=error.detail)
        return delay

    def _backoff_s(self, retry: int) -> float:
        """Full jitter before the 1st, 2nd, … retry: uniform in [0, min(max, base * 2**(retry-1))]."""
        ceiling = min(self._retry_max_s, self._retry_base_s * 2 ** min(retry - 1, MAX_BACKOFF_DOUBLINGS))
        return self._random.uniform(0.0, ceiling)

    def _count(self, endpoint: str, name: str) -> None:
        self._counts[name] += 1
        self._counts[f"{endpoint}.{name}"] += 1


def _parse(endpoint: str, response: httpx.Response) -> Any:
    status = response.status_code
    if status == HTTP_TOO_MANY_REQUESTS:
        raise HttpRateLimited(endpoint)
    if status >= httpx.codes.INTERNAL_SERVER_ERROR:
        raise HttpServerError(endpoint, status, response.text)
    if not httpx.codes.is_success(status):
        raise HttpRejected(endpoint, status, response.text)
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        raise HttpBadJson(endpoint, status, response.content) from None


def _describe(exc: httpx.TransportError) -> str:
    """The failure's kind and httpx's message, which names the connection problem, never the request."""
    message = str(exc).strip()
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__
