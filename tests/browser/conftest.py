"""What the browser tests share: finding Debian's Chromium (never a browser of Playwright's own download),
launching it headless, and watching a page for anything that went wrong.

A missing Chromium fails these tests, never skips them: `scripts/ensure-chromium` installs it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Dialog,
    Page,
    Playwright,
    Request,
    Response,
    sync_playwright,
)

ENSURE = "scripts/ensure-chromium"


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

    def assert_clean(self, *, refused: int = 0, status: int = 401) -> None:
        """Nothing went wrong, save `refused` answers with this `status` (the hard-stop controls refusing)
        and the one console line Chromium logs for each ("... responded with a status of 401 ()")."""
        assert self.page_errors == []
        assert self.failed_requests == []
        assert self.foreign_requests == []
        assert len(self.error_responses) == refused, self.error_responses
        assert all(f": {status}" in line for line in self.error_responses), self.error_responses
        assert len(self.console_errors) == refused, self.console_errors
        assert all(f"status of {status}" in line for line in self.console_errors), self.console_errors


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
