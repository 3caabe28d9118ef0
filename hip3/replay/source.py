"""A raw market recording (hip3.persist.market_recording) as one time-ordered stream for replay.

Each frame gets a replay offset in seconds from the first frame. Within one run of the recording bot the
offsets follow the recorded Trio receive times `t` exactly. Trio time restarts with every process, so where
`t` goes backwards (the recorder was restarted, in the same file or the next day's) the gap is taken from
the wall-clock `w` instead. Files are ordered by the wall time of their first frame, whatever order they are
given in; a directory stands for every `*.jsonl.gz` in it. Seed lines (book snapshots) are entries of the
stream like frames, timed the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import attrs

from hip3.persist.market_recording import RecordedEntry, read_entries


@attrs.frozen(slots=True)
class TimedFrame:
    offset_s: float  # seconds after the recording's first frame
    frame: RecordedEntry  # a WebSocket frame or a book seed


def recording_files(paths: Sequence[Path]) -> list[Path]:
    """The recording files named by `paths` (files, or directories of `*.jsonl.gz`), oldest first."""
    files: list[Path] = []
    for path in paths:
        files.extend(sorted(path.glob("*.jsonl.gz")) if path.is_dir() else [path])
    firsts = {file: _first_wall_ms(file) for file in files}
    return sorted((f for f in files if firsts[f] is not None), key=lambda f: (firsts[f], str(f)))


def _first_wall_ms(path: Path) -> int | None:
    for frame in read_entries(path):
        return frame.w
    return None


def timed_frames(frames: Iterable[RecordedEntry]) -> Iterator[TimedFrame]:
    """Frames with their replay offsets (see the module's doc); lazily."""
    offset = 0.0
    previous: RecordedEntry | None = None
    for frame in frames:
        if previous is not None:
            step = frame.t - previous.t
            if step < 0:  # a new process: its Trio clock has another origin
                step = max(0.0, (frame.w - previous.w) / 1000)
            offset += step
        previous = frame
        yield TimedFrame(offset, frame)


def read_recordings(paths: Sequence[Path]) -> Iterator[TimedFrame]:
    """Every frame and seed of the recordings named by `paths`, in time order, with replay offsets."""
    return timed_frames(entry for file in recording_files(paths) for entry in read_entries(file))
