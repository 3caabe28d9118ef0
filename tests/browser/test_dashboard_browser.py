"""The dashboard page in a real headless Chromium: it loads clean, renders the snapshot, follows the SSE
push without a reload, and its hard-stop controls reach the source with the token and only with it.

The app is served by Hypercorn on 127.0.0.1 from a thread running its own `trio.run`; the tests drive the
page with Playwright's sync API and Debian's `chromium` (never a browser of Playwright's own download).
A missing Chromium fails these tests: `scripts/ensure-chromium` installs it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import pytest
import trio
from playwright.sync_api import Browser, Page, expect

from hip3.ops.dashboard import create_dashboard_app, serve_dashboard
from hip3.ops.metrics import Metrics
from tests.browser.conftest import PageWatch, Prompts, find_chromium, missing_chromium_message
from tests.ops.test_dashboard import FakeSource

pytestmark = pytest.mark.browser

TOKEN = "br0wser-token"
COIN = "xyz:TSLA"
WAIT_MS = 5_000  # for anything the page shows: a push comes every 0.1 s
START_TIMEOUT_S = 10.0


def browser_source() -> FakeSource:
    """tests.ops.test_dashboard's fake source (the test edits its snapshot in the server's thread), flat."""
    source = FakeSource()
    source.state["positions"] = []
    return source


class ServedDashboard:
    """The dashboard app served on 127.0.0.1 (port 0) by a thread that runs its own `trio.run`."""

    def __init__(self, source: FakeSource) -> None:
        self.source = source
        self.url = ""
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._trio_token: trio.lowlevel.TrioToken | None = None
        self._cancel_scope: trio.CancelScope | None = None
        self._thread = threading.Thread(target=self._run, name="dashboard-server", daemon=True)

    def _run(self) -> None:
        try:
            trio.run(self._serve)
        except BaseException as error:  # reported to the test's thread by start() or stop()
            self._error = error
        finally:
            self._ready.set()

    async def _serve(self) -> None:
        app = create_dashboard_app(self.source, token=TOKEN, metrics=Metrics(), push_interval_s=0.1)
        async with trio.open_nursery() as nursery:
            self.url = await nursery.start(partial(serve_dashboard, app, host="127.0.0.1", port=0))
            self._trio_token = trio.lowlevel.current_trio_token()
            self._cancel_scope = nursery.cancel_scope
            self._ready.set()

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_S):
            raise RuntimeError(f"the dashboard did not start within {START_TIMEOUT_S} s")
        if self._error is not None:
            raise RuntimeError("the dashboard failed to start") from self._error

    def edit(self, change: Callable[[dict[str, Any]], None]) -> None:
        """Apply `change` to the source's snapshot in the server's thread, between two of its reads."""
        assert self._trio_token is not None
        trio.from_thread.run_sync(change, self.source.state, trio_token=self._trio_token)

    def stop(self) -> None:
        if self._trio_token is not None and self._cancel_scope is not None:
            trio.from_thread.run_sync(self._cancel_scope.cancel, trio_token=self._trio_token)
        self._thread.join(START_TIMEOUT_S)
        assert not self._thread.is_alive(), "the dashboard's thread did not stop"
        if self._error is not None:
            raise self._error


@pytest.fixture
def dashboard() -> Iterator[ServedDashboard]:
    served = ServedDashboard(browser_source())
    served.start()
    yield served
    served.stop()


@pytest.fixture
def page(browser: Browser, dashboard: ServedDashboard) -> Iterator[Page]:
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    yield page
    context.close()  # before the dashboard stops: the page's stream ends first


@pytest.fixture
def watch(page: Page, dashboard: ServedDashboard) -> PageWatch:
    return PageWatch(page, dashboard.url)


@pytest.fixture
def prompts(page: Page) -> Prompts:
    return Prompts(page)


def open_dashboard(page: Page, dashboard: ServedDashboard) -> None:
    page.goto(dashboard.url + "/")
    expect(page.locator("#stream-state")).to_have_text("live", timeout=WAIT_MS)
    expect(page.locator("#updated")).not_to_have_text("never", timeout=WAIT_MS)


def cells(page: Page, table: str, coin: str) -> Any:
    return page.locator(f'#{table} tbody tr[data-coin="{coin}"] td')


def test_chromium_is_available() -> None:
    assert find_chromium() is not None, missing_chromium_message()


def test_page_loads_clean_and_renders_the_snapshot(
    page: Page, dashboard: ServedDashboard, watch: PageWatch
) -> None:
    open_dashboard(page, dashboard)
    expect(page).to_have_title("hip3 dashboard")
    expect(page.locator("#connection")).to_have_text("connected · epoch 1")
    expect(page.locator("#connection")).to_have_class("badge good")
    expect(page.locator("#hardstop-state")).to_have_text("clear")
    expect(page.locator("#hardstop-summary")).to_have_text("clear")
    expect(cells(page, "markets", COIN)).to_have_text([COIN, "251.1", "251.3", "252.0", "27.8", "open"])
    expect(page.locator("#positions tbody td.empty")).to_have_text("none")
    expect(page.locator("#latency tbody tr")).to_have_count(2)
    expect(page.locator("#latency tbody tr").first.locator("td")).to_have_text(
        ["tick_to_order_us", "80.0", "240.0"]
    )
    expect(cells(page, "signals", COIN)).to_have_text([COIN, "buy", "27.8"])
    expect(page.locator("#counters dd")).to_have_text(["0"])
    watch.assert_clean()


def test_page_follows_the_stream_without_a_reload(
    page: Page, dashboard: ServedDashboard, watch: PageWatch
) -> None:
    open_dashboard(page, dashboard)
    page.evaluate("window.loadedOnce = true")

    def open_position_and_latch(state: dict[str, Any]) -> None:
        state["positions"] = [
            {"coin": "xyz:NVDA", "size": "-2", "entry_px": "120.5", "pnl_usd": -3.25, "held_s": 75.0}
        ]
        state["risk"] = {"hard_stop": {"trigger": "daily_loss", "reason": "lost 2%"}, "counters": {}}
        state["connection"] = {"state": "reconnecting", "epoch": 2}

    dashboard.edit(open_position_and_latch)
    expect(cells(page, "positions", "xyz:NVDA")).to_have_text(
        ["xyz:NVDA", "-2", "120.5", "-3.25", "1 m 15 s", ""]
    )
    expect(page.locator("#hardstop-state")).to_have_text("LATCHED")
    expect(page.locator("#hardstop-state")).to_have_class("badge bad")
    expect(page.locator("#hardstop-trigger")).to_have_text("daily_loss")
    expect(page.locator("#hardstop-reason")).to_have_text("lost 2%")
    expect(page.locator("#connection")).to_have_text("reconnecting · epoch 2")
    expect(page.locator("#connection")).to_have_class("badge bad")

    def clear(state: dict[str, Any]) -> None:
        state["positions"] = []
        state["risk"] = {"hard_stop": None, "counters": {}}

    dashboard.edit(clear)
    expect(page.locator("#hardstop-state")).to_have_text("clear")
    expect(page.locator("#positions tbody td.empty")).to_have_text("none")
    assert page.evaluate("window.loadedOnce") is True
    assert watch.navigations == 1
    watch.assert_clean()


def test_hard_stop_with_the_token_latches_the_source(
    page: Page, dashboard: ServedDashboard, watch: PageWatch, prompts: Prompts
) -> None:
    open_dashboard(page, dashboard)
    page.fill("#hardstop-reason-input", "browser test stop")
    prompts.queue(TOKEN)
    page.click("#hardstop-button")
    expect(page.locator("#hardstop-result")).to_have_text("done")
    assert dashboard.source.latched == ["browser test stop"]
    assert prompts.asked == ["Dashboard token (HIP3_DASHBOARD_TOKEN)"]
    expect(page.locator("#hardstop-state")).to_have_text("LATCHED")
    expect(page.locator("#hardstop-trigger")).to_have_text("manual")
    expect(page.locator("#hardstop-reason")).to_have_text("browser test stop")
    watch.assert_clean()


def test_hard_stop_with_a_wrong_token_is_refused(
    page: Page, dashboard: ServedDashboard, watch: PageWatch, prompts: Prompts
) -> None:
    open_dashboard(page, dashboard)
    prompts.queue("not-the-token")
    page.click("#hardstop-button")
    expect(page.locator("#hardstop-result")).to_have_text("refused (401): wrong token")
    expect(page.locator("#hardstop-result")).to_have_class("bad")
    assert dashboard.source.latched == []
    expect(page.locator("#hardstop-state")).to_have_text("clear")
    watch.assert_clean(refused=1)


def test_cancelled_token_prompt_sends_nothing(
    page: Page, dashboard: ServedDashboard, watch: PageWatch, prompts: Prompts
) -> None:
    open_dashboard(page, dashboard)
    prompts.queue(None)
    page.click("#hardstop-button")
    expect(page.locator("#hardstop-result")).to_have_text("cancelled")
    assert dashboard.source.latched == []
    watch.assert_clean()


def test_reset_clears_a_latched_stop(
    page: Page, dashboard: ServedDashboard, watch: PageWatch, prompts: Prompts
) -> None:
    dashboard.edit(lambda state: state["risk"].update(hard_stop={"trigger": "manual", "reason": "earlier"}))
    open_dashboard(page, dashboard)
    expect(page.locator("#hardstop-state")).to_have_text("LATCHED")
    prompts.queue("alice", TOKEN)
    page.click("#hardstop-reset-button")
    expect(page.locator("#hardstop-result")).to_have_text("done")
    assert dashboard.source.resets == ["alice"]
    assert prompts.asked == ["Operator name for the reset", "Dashboard token (HIP3_DASHBOARD_TOKEN)"]
    expect(page.locator("#hardstop-state")).to_have_text("clear")
    expect(page.locator("#hardstop-reason")).to_have_text("–")
    watch.assert_clean()
