"""Seeding each market's top of book from an l2Book snapshot whenever a connection goes LIVE.

bbo frames come only when the top of the book changes, and subscribing sends no snapshot, so a quiet market
would show no book at all (and after a reconnect, the book as it was before the gap). The seed is taken after
the subscriptions are acknowledged, and never replaces a bbo that arrived with a newer exchange time.
Each answer is also handed, as received, to `on_answer` (the market recorder's `record_seed`), applied or not:
it is the exchange's full depth at that moment, which `hip3 replay` starts its books from.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import structlog
import trio

from hip3.market.feed import MarketFeed
from hip3.net.ws import WsConnection
from hip3.protocol.messages import Bbo, L2Book, parse_l2_book_answer

log = structlog.get_logger(__name__)

InfoCall = Callable[[Mapping[str, Any]], Awaitable[Any]]
AnswerListener = Callable[[Any, float], object]  # (the l2Book answer, the Trio time it arrived)


def _top_of_book(book: L2Book) -> Bbo:
    bid = book.bids[0] if book.bids else None
    ask = book.asks[0] if book.asks else None
    return Bbo(coin=book.coin, time_ms=book.time_ms, bid=bid, ask=ask)


async def seed_books(feed: MarketFeed, info: InfoCall, on_answer: AnswerListener | None = None) -> int:
    """Apply each market's l2Book top unless a newer bbo already arrived; returns how many were applied."""
    applied = 0
    for coin, state in feed.states.items():
        try:
            answer = await info({"type": "l2Book", "coin": coin})
        except Exception as exc:  # one market's snapshot failing must not stop the others
            log.warning("book seed failed", coin=coin, error=str(exc))
            continue
        if on_answer is not None:
            on_answer(answer, trio.current_time())
        book = parse_l2_book_answer(answer)
        if not isinstance(book, L2Book):
            log.warning("book seed unreadable", coin=coin)
            continue
        if state.bbo_exchange_ms is not None and state.bbo_exchange_ms > book.time_ms:
            continue
        feed.apply(_top_of_book(book), trio.current_time())
        applied += 1
    return applied


async def run_book_seeding(
    ws: WsConnection,
    feed: MarketFeed,
    info: InfoCall,
    on_answer: AnswerListener | None = None,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Seed once each connection is LIVE: at start and after every reconnect."""
    task_status.started()
    epoch = 0
    while True:
        status = await ws.wait_live(after_epoch=epoch)
        epoch = status.epoch
        seeded = await seed_books(feed, info, on_answer)
        log.info("books seeded", markets=seeded, epoch=epoch)
