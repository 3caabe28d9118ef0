"""The hard stop: a latch that, once set, stops every new entry until an operator clears it.

Any trigger (the risk monitor's limits, a blocking clock skew, the operator) latches it; the first trigger
wins and later ones are ignored. Latching writes the latch to `state_file` atomically (temporary file, fsync,
rename, fsync of the directory) *before* the listeners hear of it, so a crash while they cancel and flatten
still restarts latched. The wiring's listeners cancel resting orders, flatten every position and raise the
alert; the entry gates read `reason()`.

The state file is the source of truth for whether the bot is latched. The journal (a later issue) will also
record latches, for history only. The file is fail-closed: a file that exists but cannot be read or parsed
counts as a latch whose reason says so, and only an operator reset (`reset`, or `hip3 reset-hardstop`
through `reset_persisted`) clears it.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import attrs
import structlog

from hip3.core.clock import WallClock
from hip3.core.watched import Watched

log = structlog.get_logger(__name__)

HARD_STOP_FILE = "hardstop.json"  # in persistence.data_dir

REALIZED_LOSS: Final = "realized_loss"
LOSING_STREAK: Final = "losing_streak"
FLATTEN_FAILURES: Final = "flatten_failures"
ALARMING_REJECTS: Final = "alarming_rejects"
SIGNER_ERRORS: Final = "signer_errors"
CLOCK_SKEW: Final = "clock_skew"
MANUAL: Final = "manual"
UNREADABLE_STATE: Final = "unreadable_state"  # the state file existed but could not be read: fail closed


@attrs.frozen
class Latch:
    reason: str
    trigger: str
    latched_at_ms: int


class HardStop:
    def __init__(self, state_file: Path, *, wall_ms: WallClock) -> None:
        self._state_file = state_file
        self._wall_ms = wall_ms
        self.listeners: list[Callable[[Latch], None]] = []
        # Told after an operator reset, with the latch that was cleared (the risk monitor re-arms on it).
        self.reset_listeners: list[Callable[[Latch], None]] = []
        restored = read_persisted(state_file)
        self.state: Watched[Latch | None] = Watched(restored)
        if restored is not None:
            log.critical(
                "hard stop restored latched from its state file; flatten-only until an operator resets it",
                trigger=restored.trigger,
                reason=restored.reason,
                latched_at_ms=restored.latched_at_ms,
                state_file=str(state_file),
            )

    @property
    def latched(self) -> Latch | None:
        return self.state.value

    def reason(self) -> str | None:
        """The entry gates' view: why entries are stopped, or None when clear."""
        current = self.state.value
        return None if current is None else current.reason

    def latch(self, trigger: str, reason: str) -> bool:
        """Latch for `reason`; False (and nothing changes) when already latched."""
        current = self.state.value
        if current is not None:
            log.info("hard stop already latched; trigger ignored", trigger=trigger, reason=reason)
            return False
        new = Latch(reason=reason, trigger=trigger, latched_at_ms=self._wall_ms())
        self._persist(new)
        self.state.set(new)
        log.critical("HARD STOP LATCHED", trigger=trigger, reason=reason, latched_at_ms=new.latched_at_ms)
        _tell(self.listeners, new, "hard stop listener failed")
        return True

    def reset(self, *, operator: str) -> Latch | None:
        """Clear the latch and its file (an operator's action); return what was cleared."""
        cleared = self.state.value
        _remove_state_file(self._state_file)  # first: if this raises, the bot stays latched
        if cleared is None:
            return None
        self.state.set(None)
        log.warning(
            "hard stop reset by operator", operator=operator, trigger=cleared.trigger, reason=cleared.reason
        )
        _tell(self.reset_listeners, cleared, "hard stop reset listener failed")
        return cleared

    def _persist(self, latch: Latch) -> None:
        try:
            write_latch_file(self._state_file, latch)
        except OSError as exc:
            # Stopping matters more than remembering: latch in memory anyway, and say loudly that a restart
            # would come back unlatched.
            log.critical(
                "hard stop state file could not be written; a restart would NOT come back latched",
                state_file=str(self._state_file),
                error=repr(exc),
            )


def reset_persisted(state_file: Path) -> Latch | None:
    """Clear a latch file without a running bot (`hip3 reset-hardstop`); return what it held, if anything.

    A running bot keeps its in-memory latch: reset it through the bot (dashboard) instead.
    """
    cleared = read_persisted(state_file)
    _remove_state_file(state_file)
    if cleared is not None:
        log.warning("hard stop state file cleared", trigger=cleared.trigger, reason=cleared.reason)
    return cleared


def read_persisted(state_file: Path) -> Latch | None:
    """The latch a state file holds: None when there is no file; a fail-closed latch when it is unreadable."""
    try:
        raw = state_file.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        return _unreadable(state_file, f"cannot read it ({exc})")
    try:
        return _latch_from_json(json.loads(raw.decode("utf-8")))
    except (ValueError, TypeError) as exc:
        return _unreadable(state_file, str(exc))


def write_latch_file(state_file: Path, latch: Latch) -> None:
    """Write `latch` so the file holds either the old content or the whole new one, even on power loss."""
    directory = state_file.parent
    directory.mkdir(parents=True, exist_ok=True)
    payload = json.dumps(attrs.asdict(latch), sort_keys=True).encode("utf-8")
    fd, temp_name = tempfile.mkstemp(dir=directory, prefix=f".{state_file.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as temp:
            temp.write(payload)
            temp.flush()
            os.fsync(temp.fileno())
        os.replace(temp_name, state_file)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    _fsync_directory(directory)


def _latch_from_json(data: Any) -> Latch:
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    reason, trigger, latched_at_ms = data.get("reason"), data.get("trigger"), data.get("latched_at_ms")
    if not isinstance(reason, str) or not isinstance(trigger, str):
        raise ValueError("reason and trigger must be strings")
    if not isinstance(latched_at_ms, int) or isinstance(latched_at_ms, bool):
        raise ValueError("latched_at_ms must be an integer")
    return Latch(reason=reason, trigger=trigger, latched_at_ms=latched_at_ms)


def _unreadable(state_file: Path, detail: str) -> Latch:
    log.critical("hard stop state file is unreadable: treating it as latched", state_file=str(state_file))
    return Latch(
        reason=f"unreadable hard-stop file: {state_file}: {detail}",
        trigger=UNREADABLE_STATE,
        latched_at_ms=_modified_ms(state_file),
    )


def _modified_ms(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns // 1_000_000
    except OSError:
        return 0


def _remove_state_file(state_file: Path) -> None:
    try:
        state_file.unlink()
    except FileNotFoundError:
        return
    _fsync_directory(state_file.parent)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _tell(listeners: list[Callable[[Latch], None]], latch: Latch, failure: str) -> None:
    # One failing listener must not keep the others (cancel, flatten, alert) from hearing of the latch.
    for listener in listeners:
        try:
            listener(latch)
        except Exception:
            log.exception(failure, listener=repr(listener))
