"""Run every benchmark script and print their figures as one JSON document (what `make bench` shows)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCHMARKS = {
    "signing": "bench_signing.py",
    "engine": "bench_engine.py",
    "feed": "bench_feed.py",
    "signal": "bench_signal.py",
}


def run(script: str) -> object:
    here = Path(__file__).resolve().parent
    result = subprocess.run(
        [sys.executable, str(here / script)], capture_output=True, text=True, check=True, cwd=here.parent
    )
    return json.loads(result.stdout)


def main() -> None:
    figures = {name: run(script) for name, script in BENCHMARKS.items()}
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
