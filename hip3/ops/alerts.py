"""Webhook alerts that never hold up trading.

    alerts = AlertSender.from_config(cfg.alerts)  # or AlertSender(url, fmt="discord", timeout_s=5.0)
    await services.start(alerts.run)
    alerts.notify(HARD_STOP, "hard stop latched", latch.reason, {"trigger": latch.trigger})

`notify` is synchronous and only appends to a bounded queue: when the queue is full the oldest alert is
dropped (and counted), so a dead webhook can never block or slow a caller. `run` is the one task that posts:
each alert is tried once and retried `retries` times after 1 s, 2 s, … (doubling) on a 429, a 5xx, a timeout
or a transport error; any other answer (a 4xx: wrong URL or payload) is not retried. Failures are logged and
counted, never raised. Without a webhook, `notify` does nothing but count the alert as skipped.

Payload shapes (`fmt`):
- generic: {"kind", "title", "text", "fields": {name: value}, "time": ISO 8601 UTC}
- discord: {"content", "embeds": [{"title", "description", "fields": [{"name", "value"}]}]}, within Discord's
  length limits (empty strings, which Discord refuses, are left out or replaced by "-")
- slack: {"text" (the notification fallback), "blocks": [header, section (text), sections of up to 10 fields]}
  with mrkdwn's &, <, > escaped

The webhook URL holds a token: it is never logged (only its host is).
"""

from __future__ import annotations

import collections
import datetime
import urllib.parse
from collections.abc import Mapping
from typing import Any, Final, Literal

import attrs
import httpx
import structlog
import trio

from hip3.config import AlertsConfig
from hip3.core.clock import WallClock, system_wall_ms

log = structlog.get_logger(__name__)

AlertFormat = Literal["generic", "discord", "slack"]

HARD_STOP: Final = "hard_stop"
DISCONNECT: Final = "disconnect"
FLATTEN_FAILURE: Final = "flatten_failure"
DAILY_SUMMARY: Final = "daily_summary"
ALERT_KINDS: Final = (HARD_STOP, DISCONNECT, FLATTEN_FAILURE, DAILY_SUMMARY)

DEFAULT_QUEUE_SIZE: Final = 100
DEFAULT_RETRIES: Final = 2
DEFAULT_RETRY_BASE_S: Final = 1.0
RETRIED_STATUSES: Final = frozenset({408, 425, 429})

# Discord's documented limits on an embed, Slack's on blocks.
DISCORD_CONTENT_MAX: Final = 2000
DISCORD_TITLE_MAX: Final = 256
DISCORD_DESCRIPTION_MAX: Final = 4096
DISCORD_FIELDS_MAX: Final = 25
DISCORD_FIELD_NAME_MAX: Final = 256
DISCORD_FIELD_VALUE_MAX: Final = 1024
SLACK_HEADER_MAX: Final = 150
SLACK_TEXT_MAX: Final = 3000
SLACK_FIELDS_PER_SECTION: Final = 10
SLACK_FIELD_MAX: Final = 2000
SLACK_FIELDS_MAX: Final = 50


@attrs.frozen
class Alert:
    kind: str
    title: str
    text: str
    fields: Mapping[str, str]
    time_ms: int


@attrs.define
class AlertCounts:
    """What happened to the alerts so far (for the dashboard and metrics)."""

    queued: int = 0
    sent: int = 0
    failed: int = 0  # given up after the retries
    retries: int = 0
    dropped: int = 0  # the oldest, pushed out of a full queue
    skipped: int = 0  # no webhook configured


# Payloads


def iso_utc(time_ms: int) -> str:
    moment = datetime.datetime.fromtimestamp(time_ms / 1000, tz=datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _fallback_line(alert: Alert) -> str:
    return f"[hip3] {alert.kind}: {alert.title}"


def generic_payload(alert: Alert) -> dict[str, Any]:
    return {
        "kind": alert.kind,
        "title": alert.title,
        "text": alert.text,
        "fields": dict(alert.fields),
        "time": iso_utc(alert.time_ms),
    }


def discord_payload(alert: Alert) -> dict[str, Any]:
    embed: dict[str, Any] = {"title": _clip(alert.title or alert.kind, DISCORD_TITLE_MAX)}
    if alert.text:
        embed["description"] = _clip(alert.text, DISCORD_DESCRIPTION_MAX)
    embed["fields"] = [
        {
            "name": _clip(name or "-", DISCORD_FIELD_NAME_MAX),
            "value": _clip(value or "-", DISCORD_FIELD_VALUE_MAX),
        }
        for name, value in list(alert.fields.items())[:DISCORD_FIELDS_MAX]
    ]
    return {"content": _clip(_fallback_line(alert), DISCORD_CONTENT_MAX), "embeds": [embed]}


def _mrkdwn(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack_field_sections(fields: Mapping[str, str]) -> list[dict[str, Any]]:
    texts = [
        {"type": "mrkdwn", "text": _clip(f"*{_mrkdwn(name)}*\n{_mrkdwn(value)}", SLACK_FIELD_MAX)}
        for name, value in list(fields.items())[:SLACK_FIELDS_MAX]
    ]
    return [
        {"type": "section", "fields": texts[start : start + SLACK_FIELDS_PER_SECTION]}
        for start in range(0, len(texts), SLACK_FIELDS_PER_SECTION)
    ]


def slack_payload(alert: Alert) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": _clip(alert.title or alert.kind, SLACK_HEADER_MAX)},
        }
    ]
    if alert.text:
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": _clip(_mrkdwn(alert.text), SLACK_TEXT_MAX)},
            }
        )
    blocks.extend(_slack_field_sections(alert.fields))
    return {"text": _mrkdwn(_fallback_line(alert)), "blocks": blocks}


PAYLOAD_BUILDERS: Final = {"generic": generic_payload, "discord": discord_payload, "slack": slack_payload}


def alert_payload(alert: Alert, fmt: AlertFormat) -> dict[str, Any]:
    """The JSON body posted to the webhook for `alert` in the shape `fmt`."""
    return PAYLOAD_BUILDERS[fmt](alert)


def webhook_host(url: str) -> str:
    """What may be logged of a webhook URL: its host (the path holds the token)."""
    return urllib.parse.urlsplit(url).hostname or "?"


# The sender


class AlertSender:
    """A bounded queue of alerts and the task that posts them (see the module docstring)."""

    def __init__(
        self,
        webhook_url: str | None,
        *,
        fmt: AlertFormat = "generic",
        timeout_s: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        retries: int = DEFAULT_RETRIES,
        retry_base_s: float = DEFAULT_RETRY_BASE_S,
        wall_ms: WallClock = system_wall_ms,
    ) -> None:
        if fmt not in PAYLOAD_BUILDERS:
            raise ValueError(f"unknown alert format {fmt!r} (allowed: {', '.join(PAYLOAD_BUILDERS)})")
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        self._url = webhook_url or None
        self._fmt: AlertFormat = fmt
        self._timeout_s = timeout_s
        self._transport = transport
        self._retries = retries
        self._retry_base_s = retry_base_s
        self._wall_ms = wall_ms
        self._queue: collections.deque[Alert] = collections.deque(maxlen=queue_size)
        self._wakeup = trio.Event()
        self.counts = AlertCounts()

    @classmethod
    def from_config(
        cls,
        alerts: AlertsConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        wall_ms: WallClock = system_wall_ms,
    ) -> AlertSender:
        return cls(
            alerts.webhook_url,
            fmt=alerts.format,
            timeout_s=alerts.timeout_ms / 1000,
            transport=transport,
            wall_ms=wall_ms,
        )

    @property
    def enabled(self) -> bool:
        return self._url is not None

    @property
    def pending(self) -> int:
        return len(self._queue)

    def notify(self, kind: str, title: str, text: str, fields: Mapping[str, str] | None = None) -> None:
        """Queue an alert; never blocks. A full queue drops its oldest alert."""
        if self._url is None:
            self.counts.skipped += 1
            return
        if len(self._queue) == self._queue.maxlen:
            dropped = self._queue[0]
            self.counts.dropped += 1
            log.warning("alert dropped: queue full", kind=dropped.kind, title=dropped.title)
        alert = Alert(kind, title, text, {str(k): str(v) for k, v in (fields or {}).items()}, self._wall_ms())
        self._queue.append(alert)
        self.counts.queued += 1
        self._wakeup.set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Post queued alerts one at a time until cancelled; never raises on a delivery failure."""
        if self._url is None:
            task_status.started()
            await trio.sleep_forever()
        async with httpx.AsyncClient(transport=self._transport, timeout=self._timeout_s) as client:
            task_status.started()
            while True:
                await self._next_wakeup()
                while self._queue:
                    await self._deliver(client, self._queue.popleft())

    async def _next_wakeup(self) -> None:
        if not self._queue:
            await self._wakeup.wait()
        self._wakeup = trio.Event()

    async def _deliver(self, client: httpx.AsyncClient, alert: Alert) -> None:
        body = alert_payload(alert, self._fmt)
        for attempt in range(self._retries + 1):
            if attempt:
                self.counts.retries += 1
                await trio.sleep(self._retry_base_s * 2 ** (attempt - 1))
            problem, retry = await self._post(client, body)
            if problem is None:
                self.counts.sent += 1
                return
            log.warning("alert delivery failed", kind=alert.kind, attempt=attempt + 1, problem=problem)
            if not retry:
                break
        self.counts.failed += 1
        log.error(
            "alert not delivered", kind=alert.kind, title=alert.title, host=webhook_host(self._url or "")
        )

    async def _post(self, client: httpx.AsyncClient, body: dict[str, Any]) -> tuple[str | None, bool]:
        """(None, _) when delivered; else (what went wrong, whether a retry may help)."""
        assert self._url is not None
        try:
            with trio.fail_after(self._timeout_s):  # the whole exchange, whatever the transport enforces
                response = await client.post(self._url, json=body)
        except trio.TooSlowError:
            return f"no answer within {self._timeout_s} s", True
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {self._without_url(str(exc))}", True
        if response.is_success:
            return None, False
        status = response.status_code
        return f"HTTP {status}", status in RETRIED_STATUSES or status >= 500

    def _without_url(self, text: str) -> str:
        return text.replace(self._url or "", f"https://{webhook_host(self._url or '')}/<redacted>")


__all__ = [
    "ALERT_KINDS",
    "DAILY_SUMMARY",
    "DISCONNECT",
    "FLATTEN_FAILURE",
    "HARD_STOP",
    "Alert",
    "AlertCounts",
    "AlertSender",
    "alert_payload",
    "discord_payload",
    "generic_payload",
    "slack_payload",
]
