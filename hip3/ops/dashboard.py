"""The operator's dashboard: a page, a JSON snapshot, a live push, health, metrics and the hard-stop controls.

A Starlette app served by Hypercorn's Trio worker from the bot's nursery. It knows the bot only through
`DashboardSource`, which the wiring implements. Routes:

- `GET /` the page (hip3/ops/static/index.html: inline CSS and JS, no build step, no external URL);
- `GET /api/snapshot` the source's snapshot as JSON;
- `GET /api/stream` Server-Sent Events: an `event: snapshot` whenever the snapshot changed, at most one per
  `push_interval_s` (≥ 0.1 s, so at most 10 a second), nothing while it is unchanged;
- `GET /healthz` `{"ok": true, ...}` for the Docker healthcheck; `GET /metrics` Prometheus text;
- `POST /api/hardstop` `{"reason": ...}` and `POST /api/hardstop/reset` `{"operator": ...}` with
  `Authorization: Bearer <HIP3_DASHBOARD_TOKEN>`. Without a configured token they always answer 403.

The app runs on the bot's event loop, so the work it asks of the bot is bounded: however many pages are
open, the source's `snapshot()` is taken at most twice per push interval (`SnapshotFeed`), and at most
`MAX_STREAM_CLIENTS` streams run at once.
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import hypercorn.trio
import orjson
import trio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from hip3.core import serving
from hip3.core.serving import hypercorn_config
from hip3.ops.metrics import METRICS_CONTENT_TYPE, Metrics

PAGE_FILE = Path(__file__).resolve().parent / "static" / "index.html"
MIN_PUSH_INTERVAL_S = 0.1  # at most 10 updates a second
MAX_STREAM_CLIENTS = 10
HEARTBEAT_S = 15.0  # the page calls the stream stale after 2.5 heartbeats without a message
HEARTBEAT = b""
CLOCK_SLACK_S = 1e-6  # a sum of sleeps in float seconds falls a hair short of the round figure
MAX_TEXT_FIELD = 500  # characters of a hard-stop reason or operator name
TOKEN_UNSET = "hard-stop control is disabled: HIP3_DASHBOARD_TOKEN is not set"

# The page is self-contained: forbid every external load, so a mistake in it cannot leak the token.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
        "connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
STREAM_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


class DashboardSource(Protocol):
    """What the dashboard needs from the bot; the wiring implements it."""

    def snapshot(self) -> dict[str, Any]: ...

    def latch_hard_stop(self, reason: str) -> str | None: ...  # an error text, or None when latched

    def reset_hard_stop(self, operator: str) -> str | None: ...  # an error text, or None when reset


def check_bind_host(host: str, *, allow_remote: bool) -> None:
    serving.check_bind_host(
        host, allow_remote=allow_remote, what="the dashboard", permission="allow_remote is set"
    )


def encode_snapshot(snapshot: dict[str, Any]) -> bytes:
    # orjson writes NaN and infinities as null: a bare NaN would break JSON.parse in the page.
    return orjson.dumps(snapshot, default=str, option=orjson.OPT_NON_STR_KEYS)


class SnapshotFeed:
    """The source's snapshot, encoded, taken at most twice per push interval however many readers ask.

    Readers poll once per push interval; a cache that lived a whole interval would, by float jitter in
    their sleeps, sometimes hand a reader the copy it already has and so skip a change for a round.
    """

    def __init__(self, source: DashboardSource, push_interval_s: float) -> None:
        self._source = source
        self._max_age_s = push_interval_s / 2
        self._encoded: bytes | None = None
        self._taken_at = 0.0

    def latest(self) -> bytes:
        now = trio.current_time()
        if self._encoded is None or now - self._taken_at >= self._max_age_s:
            self._encoded = encode_snapshot(self._source.snapshot())
            self._taken_at = now
        return self._encoded


async def snapshot_changes(
    feed: SnapshotFeed, interval_s: float, *, heartbeat_s: float | None = None
) -> AsyncIterator[bytes]:
    """Each changed snapshot, polled once per interval: changes in between coalesce into the latest one.

    With `heartbeat_s`, an unchanged stretch that long yields `HEARTBEAT`, so a page can tell a quiet bot
    from a stalled stream."""
    last: bytes | None = None
    sent_at = trio.current_time()
    while True:
        current = feed.latest()
        if current != last:
            last, sent_at = current, trio.current_time()
            yield current
        elif heartbeat_s is not None and trio.current_time() - sent_at >= heartbeat_s - CLOCK_SLACK_S:
            sent_at = trio.current_time()
            yield HEARTBEAT
        await trio.sleep(interval_s)


async def server_sent_events(snapshots: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    async for encoded in snapshots:  # compact JSON has no newline, so one data line carries it
        if encoded == HEARTBEAT:  # no snapshot encodes to nothing
            yield b"event: heartbeat\ndata: {}\n\n"
        else:
            yield b"event: snapshot\ndata: " + encoded + b"\n\n"


class StreamSlots:
    """Counts the live streams so that one page too many is refused rather than slowing the bot."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_use = 0

    def try_take(self) -> bool:
        if self.in_use >= self.limit:
            return False
        self.in_use += 1
        return True

    def release(self) -> None:
        self.in_use -= 1


class EventStreamResponse(StreamingResponse):
    """A Server-Sent Events response that gives its slot back however the stream ends."""

    def __init__(self, events: AsyncIterator[bytes], slots: StreamSlots) -> None:
        super().__init__(events, media_type="text/event-stream", headers=STREAM_HEADERS)
        self._slots = slots

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._slots.release()


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"ok": False, "error": message}, status_code=status, headers=headers)


def _bearer_token(request: Request) -> str | None:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        return None
    return credentials.strip()


def refuse_unless_authorised(request: Request, token: str | None) -> JSONResponse | None:
    """None when the request carries the configured token; otherwise the refusal to send."""
    if not token:
        return _error(403, TOKEN_UNSET)
    offered = _bearer_token(request)
    challenge = {"WWW-Authenticate": "Bearer"}
    if offered is None:
        return _error(401, "missing token: send Authorization: Bearer <HIP3_DASHBOARD_TOKEN>", challenge)
    if not hmac.compare_digest(offered.encode(), token.encode()):
        return _error(401, "wrong token", challenge)
    return None


async def read_text_field(request: Request, field: str, *, default: str | None) -> str | JSONResponse:
    """The named text field of the JSON body, or the 400 refusal to send."""
    body = await request.body()
    try:
        payload = orjson.loads(body) if body.strip() else {}
    except orjson.JSONDecodeError:
        return _error(400, "the body is not JSON")
    value = payload.get(field, default) if isinstance(payload, dict) else None
    if not isinstance(value, str) or not value.strip():
        return _error(400, f'the body needs a non-empty text "{field}"')
    if len(value) > MAX_TEXT_FIELD:
        return _error(400, f'"{field}" is longer than {MAX_TEXT_FIELD} characters')
    return value.strip()


class DashboardRoutes:
    """The request handlers, sharing the source, the token, the metrics and the snapshot feed."""

    def __init__(
        self,
        source: DashboardSource,
        token: str | None,
        metrics: Metrics,
        interval_s: float,
        max_streams: int,
    ):
        self.source = source
        self.token = token
        self.metrics = metrics
        self.interval_s = interval_s
        self.feed = SnapshotFeed(source, interval_s)
        self.max_streams = max_streams
        self.slots = StreamSlots(max_streams)
        self.page = PAGE_FILE.read_bytes()

    async def index(self, request: Request) -> Response:
        return HTMLResponse(self.page, headers=PAGE_HEADERS)

    async def snapshot(self, request: Request) -> Response:
        return Response(
            self.feed.latest(), media_type="application/json", headers={"Cache-Control": "no-store"}
        )

    async def stream(self, request: Request) -> Response:
        if not self.slots.try_take():
            return _error(503, f"too many live streams (at most {self.max_streams}); close another page")
        return EventStreamResponse(
            server_sent_events(snapshot_changes(self.feed, self.interval_s, heartbeat_s=HEARTBEAT_S)),
            self.slots,
        )

    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"ok": True, "streams": self.slots.in_use})

    async def metrics_text(self, request: Request) -> Response:
        return Response(self.metrics.render(), media_type=METRICS_CONTENT_TYPE)

    async def latch(self, request: Request) -> Response:
        refusal = refuse_unless_authorised(request, self.token)
        if refusal is not None:
            return refusal
        reason = await read_text_field(request, "reason", default=None)
        if isinstance(reason, Response):
            return reason
        return _outcome(self.source.latch_hard_stop(reason))

    async def reset(self, request: Request) -> Response:
        refusal = refuse_unless_authorised(request, self.token)
        if refusal is not None:
            return refusal
        operator = await read_text_field(request, "operator", default="dashboard")
        if isinstance(operator, Response):
            return operator
        return _outcome(self.source.reset_hard_stop(operator))


def _outcome(error: str | None) -> JSONResponse:
    return JSONResponse({"ok": True}) if error is None else _error(409, error)


def create_dashboard_app(
    source: DashboardSource,
    *,
    token: str | None,
    metrics: Metrics,
    push_interval_s: float = 0.1,
    max_streams: int = MAX_STREAM_CLIENTS,
) -> Starlette:
    """The dashboard app; `token` is HIP3_DASHBOARD_TOKEN (None or empty: the hard-stop endpoints refuse)."""
    if push_interval_s < MIN_PUSH_INTERVAL_S:
        raise ValueError(f"push_interval_s must be at least {MIN_PUSH_INTERVAL_S} (10 updates a second)")
    routes = DashboardRoutes(source, token, metrics, push_interval_s, max_streams)
    return Starlette(
        routes=[
            Route("/", routes.index, methods=["GET"]),
            Route("/api/snapshot", routes.snapshot, methods=["GET"]),
            Route("/api/stream", routes.stream, methods=["GET"]),
            Route("/healthz", routes.healthz, methods=["GET"]),
            Route("/metrics", routes.metrics_text, methods=["GET"]),
            Route("/api/hardstop", routes.latch, methods=["POST"]),
            Route("/api/hardstop/reset", routes.reset, methods=["POST"]),
        ]
    )


async def serve_dashboard(
    app: Starlette,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    allow_remote: bool = False,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the app until cancelled; reports the bound URL (e.g. http://127.0.0.1:8080) when listening."""
    check_bind_host(host, allow_remote=allow_remote)
    serve = partial(hypercorn.trio.serve, app, hypercorn_config(host, port))  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        binds: list[str] = await nursery.start(serve)
        task_status.started(binds[0])
