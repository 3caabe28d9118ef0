"""The dashboard page in a real headless Chromium: it loads clean, renders the snapshot, follows the SSE
push without a reload, and its hard-stop controls reach the source with the token and only with it.

The app is served by Hypercorn on 127.0.0.1 from a thread running its own `trio.run`; the tests drive the
page with Playwright's sync API and Debian's `chromium` (never a browser of Playwright's own download).
A missing Chromium fails these tests: `scripts/ensure-chromium` installs it.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Dialog,
    Page,
    Playwright,
    Request,
    Response,
    expect,
    sync_playwright,
)

from hip3.ops.dashboard import create_dashboard_app, serve_dashboard
from hip3.ops.metrics import Metrics

pytestmark = pytest.mark.browser

TOKEN = "br0wser-token"
COIN = "xyz:TSLA"
WAIT_MS = 5_000  # for anything the page shows: a push comes every 0.1 s
START_TIMEOUT_S = 10.0
ENSURE = "scripts/ensure-chromium"
# Chromium logs "Failed to load resource: the server responded with a status of 401 ()" for a refusal.
UNAUTHORISED_CONSOLE = "status of 401"


def find_chromium() -> str | None:
    """The same search as scripts/ensure-chromium: $HIP3_CHROMIUM, then chromium, then chromium-browser."""
    configured = os.environ.get("HIP3_CHROMIUM")
    if configured:
        return configured if Path(configured).is_file() and os.access(configured, os.X_OK) else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


def missing_chromium_message() -> str:
    configured = os.environ.get("HIP3_CHROMIUM")
    where = f"HIP3_CHROMIUM={configured} is not an executable file" if configured else "no chromium on PATH"
    return f"the browser tests need Chromium ({where}): run {ENSURE} (installs Debian's chromium package)"


def base_snapshot() -> dict[str, Any]:
    return {
        "markets": [
            {
                "coin": COIN,
                "bid": "251.1",
                "ask": "251.3",
                "oracle": "252.0",
                "edge_bps": 27.8,
                "gate": "open",
            }
        ],
        "positions": [],
        "orders": [],
        "signals": [{"coin": COIN, "side": "buy", "edge_bps": 27.8}],
        "fills": [],
        "risk": {"hard_stop": None, "counters": {"losing_streak": 0}},
        "connection": {"state": "connected", "epoch": 1},
        "latency": {"tick_to_order_us": {"p50": 80, "p99": 240}, "post_rtt_ms": {"p50": 12, "p99": 40}},
        "summary": {"round_trips": 0},
    }


class FakeSource:
    """A DashboardSource whose snapshot the test edits (in the server's thread); it records the hard stops."""

    def __init__(self) -> None:
        self.state = base_snapshot()
        self.latched: list[str] = []
        self.resets: list[str] = []

    def snapshot(self) -> dict[str, Any]:
        return self.state

    def latch_hard_stop(self, reason: str) -> str | None:
        self.latched.append(reason)
        self.state["risk"]["hard_stop"] = {"trigger": "manual", "reason": reason}
        return None

    def reset_hard_stop(self, operator: str) -> str | None:
        self.resets.append(operator)
        self.state["risk"]["hard_stop"] = None
        return None


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


class PageWatch:
    """What a page logged and requested: console errors, page errors, failed or refused requests."""

    def __init__(self, page: Page, origin: str) -> None:
        self.origin = origin
        self.console_errors: list[str] = []
        self.page_errors: list[str] = []
        self.failed_requests: list[str] = []
        self.error_responses: list[str] = []
        self.foreign_requests: list[str] = []
        self.navigations = 0
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.page_errors.append(str(error)))
        page.on("requestfailed", self._failed)
        page.on("response", self._response)
        page.on("request", self._request)
        page.on("framenavigated", self._navigated)
        self._page = page

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.console_errors.append(message.text)

    def _failed(self, request: Request) -> None:
        self.failed_requests.append(f"{request.method} {request.url}: {request.failure}")

    def _response(self, response: Response) -> None:
        if response.status >= 400:
            self.error_responses.append(f"{response.request.method} {response.url}: {response.status}")

    def _request(self, request: Request) -> None:
        if not (request.url.startswith(self.origin + "/") or request.url.startswith("data:")):
            self.foreign_requests.append(request.url)

    def _navigated(self, frame: Any) -> None:
        if frame == self._page.main_frame:
            self.navigations += 1

    def assert_clean(self, *, refused: int = 0) -> None:
        """Nothing went wrong, save `refused` 401 answers and the one console line Chromium logs for each."""
        assert self.page_errors == []
        assert self.failed_requests == []
        assert self.foreign_requests == []
        assert len(self.error_responses) == refused, self.error_responses
        assert all(": 401" in line for line in self.error_responses), self.error_responses
        assert len(self.console_errors) == refused, self.console_errors
        assert all(UNAUTHORISED_CONSOLE in line for line in self.console_errors), self.console_errors


class Prompts:
    """Answers the page's window.prompt dialogs in order (None dismisses one) and records what they asked."""

    def __init__(self, page: Page) -> None:
        self.answers: list[str | None] = []
        self.asked: list[str] = []
        page.on("dialog", self._answer)

    def queue(self, *answers: str | None) -> None:
        self.answers.extend(answers)

    def _answer(self, dialog: Dialog) -> None:
        self.asked.append(dialog.message)
        if dialog.type != "prompt" or not self.answers:
            dialog.dismiss()
            return
        answer = self.answers.pop(0)
        if answer is None:
            dialog.dismiss()
        else:
            dialog.accept(answer)


@pytest.fixture(scope="module")
def chromium_path() -> str:
    path = find_chromium()
    if path is None:
        pytest.fail(missing_chromium_message(), pytrace=False)
    return path


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright, chromium_path: str) -> Iterator[Browser]:
    try:
        browser = playwright.chromium.launch(executable_path=chromium_path, headless=True)
    except Exception as error:
        pytest.fail(f"could not start {chromium_path} headless ({error}); see {ENSURE}", pytrace=False)
    yield browser
    browser.close()


@pytest.fixture
def dashboard() -> Iterator[ServedDashboard]:
    served = ServedDashboard(FakeSource())
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
