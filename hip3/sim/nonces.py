"""Per-signer nonce sets (protocol reference §5).

Each signer keeps its `size` highest nonces. A new nonce must be unused, greater than the smallest kept one
once the set is full, and inside the open window (now − back, now + ahead). The "too low" bound reported is
whichever lower bound was violated (the smallest kept nonce, or the window's lower edge).
"""

from __future__ import annotations

import heapq

from hip3.sim import errors_text


class _SignerNonces:
    __slots__ = ("heap", "used")

    def __init__(self) -> None:
        self.heap: list[int] = []
        self.used: set[int] = set()


class NonceStore:
    def __init__(self, *, size: int, window_back_ms: int, window_ahead_ms: int) -> None:
        if size < 1:
            raise ValueError(f"nonce set size must be ≥ 1, got {size}")
        self._size = size
        self._back = window_back_ms
        self._ahead = window_ahead_ms
        self._signers: dict[str, _SignerNonces] = {}

    def use(self, signer: str, nonce: int, now_ms: int) -> str | None:
        """Record `nonce` for `signer` if it is acceptable; otherwise the error text (nothing recorded)."""
        state = self._signers.setdefault(signer, _SignerNonces())
        error = self._check(state, nonce, now_ms)
        if error is None:
            self._record(state, nonce)
        return error

    def _check(self, state: _SignerNonces, nonce: int, now_ms: int) -> str | None:
        if nonce in state.used:
            return errors_text.NONCE_DUPLICATE.format(nonce=nonce)
        upper = now_ms + self._ahead
        if nonce >= upper:
            return errors_text.NONCE_TOO_HIGH.format(nonce=nonce, bound=upper)
        lower = now_ms - self._back
        if len(state.heap) >= self._size:
            lower = max(lower, state.heap[0])
        if nonce <= lower:
            return errors_text.NONCE_TOO_LOW.format(nonce=nonce, bound=lower)
        return None

    def _record(self, state: _SignerNonces, nonce: int) -> None:
        heapq.heappush(state.heap, nonce)
        state.used.add(nonce)
        if len(state.heap) > self._size:
            state.used.discard(heapq.heappop(state.heap))
