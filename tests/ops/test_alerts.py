"""hip3.ops.alerts: payload shapes, delivery, retries on Trio's clock, and never blocking the caller."""

from __future__ import annotations

import json

import httpx
import pytest
import trio
from structlog.testing import capture_logs

from hip3.config import AlertsConfig
from hip3.ops.alerts import (
    DAILY_SUMMARY,
    HARD_STOP,
    Alert,
    AlertSender,
    alert_payload,
)

URL = "https://hooks.example.invalid/services/T000/B000/SECRETTOKEN"
TIME_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def fixed_clock() -> int:
    return TIME_MS


HARD_STOP_ALERT = Alert(
    HARD_STOP,
    "hard stop latched",
    "loss 21.5 > 20 in 3600 s",
    {"trigger": "realized_loss", "pnl": "-21.5"},
    TIME_MS,
)


class Recorder:
    """A webhook that answers with `statuses` in turn (then 204) and records when each post arrived."""

    def __init__(self, statuses: list[int] | None = None, error: Exception | None = None) -> None:
        self.statuses = list(statuses or [])
        self.error = error
        self.bodies: list[object] = []
        self.times: list[float] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.times.append(trio.current_time())
        self.bodies.append(json.loads(request.content))
        if self.error is not None:
            raise self.error
        return httpx.Response(self.statuses.pop(0) if self.statuses else 204)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handler)


def sender(recorder: Recorder, **kwargs: object) -> AlertSender:
    return AlertSender(URL, transport=recorder.transport(), wall_ms=fixed_clock, **kwargs)  # type: ignore[arg-type]


# Payloads


def test_generic_payload() -> None:
    assert alert_payload(HARD_STOP_ALERT, "generic") == {
        "kind": "hard_stop",
        "title": "hard stop latched",
        "text": "loss 21.5 > 20 in 3600 s",
        "fields": {"trigger": "realized_loss", "pnl": "-21.5"},
        "time": "2026-01-01T00:00:00.000Z",
    }


def test_discord_payload() -> None:
    assert alert_payload(HARD_STOP_ALERT, "discord") == {
        "content": "[hip3] hard_stop: hard stop latched",
        "embeds": [
            {
                "title": "hard stop latched",
                "description": "loss 21.5 > 20 in 3600 s",
                "fields": [{"name": "trigger", "value": "realized_loss"}, {"name": "pnl", "value": "-21.5"}],
            }
        ],
    }


def test_slack_payload() -> None:
    assert alert_payload(HARD_STOP_ALERT, "slack") == {
        "text": "[hip3] hard_stop: hard stop latched",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "hard stop latched"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "loss 21.5 &gt; 20 in 3600 s"}},
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": "*trigger*\nrealized_loss"},
                    {"type": "mrkdwn", "text": "*pnl*\n-21.5"},
                ],
            },
        ],
    }


def test_payloads_respect_the_services_limits_and_refuse_nothing_empty() -> None:
    fields = {f"f{i}": "" for i in range(30)}
    alert = Alert(DAILY_SUMMARY, "t" * 300, "", fields, TIME_MS)
    embed = alert_payload(alert, "discord")["embeds"][0]
    assert len(embed["title"]) == 256 and "description" not in embed
    assert len(embed["fields"]) == 25 and all(field["value"] == "-" for field in embed["fields"])
    blocks = alert_payload(alert, "slack")["blocks"]
    assert len(blocks[0]["text"]["text"]) == 150
    assert [len(block["fields"]) for block in blocks[1:]] == [10, 10, 10]


# Delivery


@pytest.mark.parametrize("fmt", ["generic", "discord", "slack"])
async def test_posts_the_payload_of_its_format(fmt: str, autojump_clock: trio.testing.MockClock) -> None:
    recorder = Recorder()
    alerts = sender(recorder, fmt=fmt)
    async with trio.open_nursery() as nursery:
        await nursery.start(alerts.run)
        alerts.notify(HARD_STOP, HARD_STOP_ALERT.title, HARD_STOP_ALERT.text, HARD_STOP_ALERT.fields)
        await trio.sleep(1)
        nursery.cancel_scope.cancel()
    assert recorder.bodies == [alert_payload(HARD_STOP_ALERT, fmt)]  # type: ignore[arg-type]
    assert alerts.counts.sent == 1 and alerts.counts.failed == 0


async def test_retries_at_one_then_two_seconds_then_gives_up(autojump_clock: trio.testing.MockClock) -> None:
    recorder = Recorder(statuses=[500, 503, 502])
    alerts = sender(recorder)
    async with trio.open_nursery() as nursery:
        await nursery.start(alerts.run)
        start = trio.current_time()
        with capture_logs() as logs:
            alerts.notify(HARD_STOP, "t", "x")
            await trio.sleep(10)
        nursery.cancel_scope.cancel()
    assert [round(t - start, 6) for t in recorder.times] == [0, 1, 3]
    assert (alerts.counts.failed, alerts.counts.retries, alerts.counts.sent) == (1, 2, 0)
    assert [entry["event"] for entry in logs][-1] == "alert not delivered"
    assert not any("SECRETTOKEN" in repr(entry) for entry in logs)


async def test_a_retry_that_succeeds_counts_as_sent(autojump_clock: trio.testing.MockClock) -> None:
    recorder = Recorder(statuses=[429])
    alerts = sender(recorder)
    async with trio.open_nursery() as nursery:
        await nursery.start(alerts.run)
        start = trio.current_time()
        alerts.notify(HARD_STOP, "t", "x")
        await trio.sleep(5)
        nursery.cancel_scope.cancel()
    assert [round(t - start, 6) for t in recorder.times] == [0, 1]
    assert (alerts.counts.sent, alerts.counts.failed, alerts.counts.retries) == (1, 0, 1)


async def test_a_client_error_is_not_retried(autojump_clock: trio.testing.MockClock) -> None:
    recorder = Recorder(statuses=[404])
    alerts = sender(recorder)
    async with trio.open_nursery() as nursery:
        await nursery.start(alerts.run)
        alerts.notify(HARD_STOP, "t", "x")
        await trio.sleep(10)
        nursery.cancel_scope.cancel()
    assert len(recorder.times) == 1 and alerts.counts.failed == 1


async def test_transport_errors_are_retried_and_never_raised(autojump_clock: trio.testing.MockClock) -> None:
    recorder = Recorder(error=httpx.ConnectError(f"cannot reach {URL}"))
    alerts = sender(recorder)
    async with trio.open_nursery() as nursery:
        await nursery.start(alerts.run)
        with capture_logs() as logs:
            alerts.notify(HARD_STOP, "first", "x")
            alerts.notify(HARD_STOP, "second", "x")
            await trio.sleep(20)
        nursery.cancel_scope.cancel()
    assert len(recorder.times) == 6 and alerts.counts.failed == 2
    assert "SECRETTOKEN" not in repr(logs) and "hooks.example.invalid" in repr(logs)


async def test_a_stuck_webhook_never_blocks_notify_and_the_oldest_is_dropped(
    autojump_clock: trio.testing.MockClock,
) -> None:
    release = trio.Event()
    posted: list[str] = []

    async def stuck(request: httpx.Request) -> httpx.Response:
        posted.append(json.loads(request.content)["title"])
        await release.wait()
        return httpx.Response(204)

    alerts = AlertSender(
        URL, transport=httpx.MockTransport(stuck), timeout_s=1000, queue_size=3, wall_ms=fixed_clock
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(alerts.run)
        alerts.notify(HARD_STOP, "a0", "being posted")
        await trio.sleep(1)
        before = trio.current_time()
        for i in range(1, 6):
            alerts.notify(HARD_STOP, f"a{i}", "queued")
        assert trio.current_time() == before  # notify returned without waiting
        assert alerts.counts.dropped == 2 and alerts.pending == 3
        release.set()
        await trio.sleep(1)
        nursery.cancel_scope.cancel()
    assert posted == ["a0", "a3", "a4", "a5"]
    assert alerts.counts.sent == 4


async def test_a_slow_webhook_times_out_and_is_retried(autojump_clock: trio.testing.MockClock) -> None:
    attempts: list[float] = []

    async def never(request: httpx.Request) -> httpx.Response:
        attempts.append(trio.current_time())
        await trio.sleep_forever()

    alerts = AlertSender(URL, transport=httpx.MockTransport(never), timeout_s=2.0, wall_ms=fixed_clock)
    async with trio.open_nursery() as nursery:
        await nursery.start(alerts.run)
        start = trio.current_time()
        alerts.notify(HARD_STOP, "t", "x")
        await trio.sleep(30)
        nursery.cancel_scope.cancel()
    assert [round(t - start, 6) for t in attempts] == [0, 3, 7]  # 2 s timeout, then 1 s and 2 s backoff
    assert alerts.counts.failed == 1 and alerts.counts.retries == 2


async def test_without_a_webhook_notify_is_a_counted_no_op(autojump_clock: trio.testing.MockClock) -> None:
    alerts = AlertSender(None)
    async with trio.open_nursery() as nursery:
        await nursery.start(alerts.run)
        alerts.notify(HARD_STOP, "t", "x")
        await trio.sleep(1)
        nursery.cancel_scope.cancel()
    assert alerts.counts.skipped == 1 and alerts.pending == 0 and not alerts.enabled


def test_from_config() -> None:
    alerts = AlertSender.from_config(AlertsConfig(webhook_url=URL, format="slack", timeout_ms=1500))
    assert alerts.enabled


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="alert format"):
        AlertSender(URL, fmt="teams")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="queue_size"):
        AlertSender(URL, queue_size=0)
