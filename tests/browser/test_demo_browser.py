"""The dashboard page in headless Chromium against a real `hip3 demo` run (issue 8): the page loads without
console errors, shows the demo's markets, a position appears after a fill, and the hard-stop button is refused
when no token is configured. A screenshot of the page with the position is saved to artifacts/.

The demo runs as a subprocess (`python -m hip3 demo`: the simulator on loopback, a throwaway funded key, the
bot and its dashboard on a free port), without HIP3_DASHBOARD_TOKEN so the hard-stop endpoints answer 403.
SIGINT then runs the bot's own shutdown (cancel, flatten) and the test reads the demo's JSON summary.

SEED 2 of the default scenario: the first fill comes about 12 s after the start (xyz:GOLD) and a position is
then held without a gap until about 35 s (GOLD's time stop, then xyz:SILVER); the demo stops while it is held,
so the summary also proves the shutdown flattened it. Real clock, real sockets, loopback only.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest
from playwright.sync_api import Browser, Page, expect

from hip3.demo import free_port
from tests.browser.conftest import PageWatch, Prompts
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.browser

SEED = 2  # see the module's docstring
DEMO_DURATION_S = 150  # longer than the test: it ends the demo itself with SIGINT
SIM_CONFIG = REPO_ROOT / "config" / "sim.toml"
ARTIFACT = REPO_ROOT / "artifacts" / "dashboard-demo.png"
TOKEN_ENV = "HIP3_DASHBOARD_TOKEN"
HEALTHY_WITHIN_S = 30.0  # the demo answers /healthz ~1-2 s after it starts
MARKETS_WITHIN_MS = 20_000  # every allowlisted market has a bid and an ask
POSITION_WITHIN_MS = 70_000  # ~12 s with this seed; bounded so a failing run stays under ~90 s
WAIT_MS = 10_000  # anything else the page shows (a push comes every update_interval_ms)
EXIT_WITHIN_S = 40.0  # SIGINT to exit: cancel, flatten, stop (shutdown.deadline_s is 15)
PRICE = re.compile(r"^\d+(\.\d+)?$")
NONZERO_SIZE = re.compile(r"^-?(?!0+(\.0+)?$)\d+(\.\d+)?$")


def allowlisted_coins() -> list[str]:
    with SIM_CONFIG.open("rb") as file:
        config = tomllib.load(file)
    return [entry["coin"] for entry in config["markets"]["allowlist"]]


class DemoProcess:
    """`python -m hip3 demo` as a subprocess, its output in files (a pipe nobody reads could block it)."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.summary_path = workdir / "summary.json"
        self._stdout_path = workdir / "demo.out"
        self._stderr_path = workdir / "demo.err"
        self._files: list[IO[bytes]] = []
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [
            sys.executable,
            "-m",
            "hip3",
            "demo",
            "--duration",
            str(DEMO_DURATION_S),
            "--seed",
            str(SEED),
            "--dashboard-port",
            str(self.port),
            "--summary-json",
            str(self.summary_path),
        ]
        environ = {name: value for name, value in os.environ.items() if name != TOKEN_ENV}
        stdout, stderr = self._stdout_path.open("wb"), self._stderr_path.open("wb")
        self._files = [stdout, stderr]
        self.process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=environ, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr
        )

    def output(self) -> str:
        """The end of what the demo printed, for a failure's message."""
        texts = []
        for path in (self._stdout_path, self._stderr_path):
            text = path.read_text(errors="replace") if path.exists() else ""
            texts.append(f"--- {path.name} (last 3000 characters) ---\n{text[-3000:]}")
        return "\n".join(texts)

    def wait_healthy(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + HEALTHY_WITHIN_S
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                pytest.fail(f"the demo exited with {code} before its dashboard answered\n{self.output()}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2) as answer:
                    if answer.status == 200 and json.load(answer).get("ok") is True:
                        return
            except (OSError, urllib.error.URLError, ValueError):
                pass
            time.sleep(0.2)
        pytest.fail(f"the demo's dashboard did not answer {self.url}/healthz within {HEALTHY_WITHIN_S} s")

    def interrupt(self) -> int:
        """SIGINT (Ctrl-C: the bot's graceful shutdown) and the exit code, within EXIT_WITHIN_S."""
        assert self.process is not None
        self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(EXIT_WITHIN_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the demo did not exit within {EXIT_WITHIN_S} s of SIGINT\n{self.output()}")

    def summary(self) -> dict[str, Any]:
        assert self.summary_path.exists(), f"no summary at {self.summary_path}\n{self.output()}"
        summary: dict[str, Any] = json.loads(self.summary_path.read_text(encoding="utf-8"))
        return summary

    def stop(self) -> None:
        """Whatever happened: the process is gone (SIGINT, then SIGKILL) and its files are closed."""
        try:
            if self.process is not None and self.process.poll() is None:
                self.process.send_signal(signal.SIGINT)
                try:
                    self.process.wait(EXIT_WITHIN_S / 2)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(10)
        finally:
            for file in self._files:
                file.close()


@pytest.fixture
def demo(browser: Browser, tmp_path: Path) -> Iterator[DemoProcess]:
    """A running demo whose dashboard answers (`browser` first: a missing Chromium fails before it starts)."""
    running = DemoProcess(tmp_path)
    try:
        running.start()
        running.wait_healthy()
        yield running
    finally:
        running.stop()


def row(page: Page, table: str, coin: str | None = None) -> Any:
    selector = "[data-coin]" if coin is None else f'[data-coin="{coin}"]'
    return page.locator(f"#{table} tbody tr{selector}")


def expect_markets(page: Page, coins: list[str]) -> None:
    expect(row(page, "markets")).to_have_count(len(coins), timeout=MARKETS_WITHIN_MS)
    for coin in coins:
        cells = row(page, "markets", coin).locator("td")
        expect(cells.nth(0)).to_have_text(coin, timeout=MARKETS_WITHIN_MS)
        expect(cells.nth(1)).to_have_text(PRICE, timeout=MARKETS_WITHIN_MS)  # bid
        expect(cells.nth(2)).to_have_text(PRICE, timeout=MARKETS_WITHIN_MS)  # ask


def save_screenshot(page: Page, tmp_path: Path) -> None:
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    image = page.screenshot(full_page=True)
    ARTIFACT.write_bytes(image)
    (tmp_path / ARTIFACT.name).write_bytes(image)


def test_the_dashboard_follows_a_demo_run(browser: Browser, demo: DemoProcess, tmp_path: Path) -> None:
    coins = allowlisted_coins()
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        watch = PageWatch(page, demo.url)
        prompts = Prompts(page)

        # The page loads clean and shows the demo's markets, a live exchange connection and no hard stop.
        page.goto(demo.url + "/")
        expect(page).to_have_title("hip3 dashboard")
        expect(page.locator("#stream-state")).to_have_text("live")
        expect(page.locator("#updated")).not_to_have_text("never")
        expect_markets(page, coins)
        expect(page.locator("#connection")).to_have_text(re.compile(r"^live\b"))
        expect(page.locator("#connection")).to_have_class("badge good")
        expect(page.locator("#hardstop-state")).to_have_text("clear")
        watch.assert_clean()

        # A fill opens a position: it appears without a reload, and the fill is listed.
        position = row(page, "positions").first
        expect(position).to_be_visible(timeout=POSITION_WITHIN_MS)
        coin = position.get_attribute("data-coin")
        assert coin in coins, coin
        expect(position.locator("td").nth(1)).to_have_text(NONZERO_SIZE)  # size
        expect(position.locator("td").nth(2)).to_have_text(PRICE)  # entry price
        expect(row(page, "fills").first).to_be_visible()
        expect(row(page, "signals").first).to_be_visible()
        save_screenshot(page, tmp_path)
        assert watch.navigations == 1
        watch.assert_clean()

        # Without HIP3_DASHBOARD_TOKEN the hard-stop button is refused, whatever token is typed.
        prompts.queue("some-token")
        page.click("#hardstop-button")
        expect(page.locator("#hardstop-result")).to_contain_text("refused (403)")
        expect(page.locator("#hardstop-result")).to_have_class("bad")
        assert prompts.asked == ["Dashboard token (HIP3_DASHBOARD_TOKEN)"]
        expect(page.locator("#hardstop-state")).to_have_text("clear")
        watch.assert_clean(refused=1, status=403)
    finally:
        context.close()  # before the demo stops: the page's stream ends first

    # Ctrl-C: the bot's shutdown cancels and flattens (a position is still held with this seed), then exits.
    code = demo.interrupt()
    assert code == 0, demo.output()
    summary = demo.summary()
    assert isinstance(summary["round_trips"], int) and summary["round_trips"] >= 0, summary
    assert summary["open_orders_at_end"] == 0, summary
    assert summary["positions_at_end"] == {}, summary
