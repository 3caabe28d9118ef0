"""Run every benchmark script and print their figures as one JSON document (what `make bench` shows).

The headline figures come first, at the top level; each script's whole output follows under `details`, and
the machine the figures were taken on under `machine`. Each script runs in its own process, one after the
other, so none measures another's garbage or warm caches.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCHMARKS = {
    "signing": "bench_signing.py",
    "engine": "bench_engine.py",
    "feed": "bench_feed.py",
    "signal": "bench_signal.py",
    "tick_to_order": "bench_tick_to_order.py",
}
# `--quick`: each script on a sample too small for figures worth quoting, to prove the whole run works
# (the test suite does this; `make bench` never does).
QUICK_ARGS = {
    "signing": ["--n", "20"],
    "engine": ["--n", "200"],
    "feed": ["--n", "2000"],
    "signal": ["--n", "2000"],
    "tick_to_order": ["--events", "20", "--sim-events", "10"],
}
SCRIPT_LIMIT_S = 240  # the slowest script takes about a minute; past this one is stuck


def run(script: str, args: list[str]) -> dict[str, Any]:
    here = Path(__file__).resolve().parent
    result = subprocess.run(
        [sys.executable, str(here / script), *args],
        capture_output=True,
        text=True,
        check=True,
        cwd=here.parent,
        timeout=SCRIPT_LIMIT_S,
    )
    figures: dict[str, Any] = json.loads(result.stdout)
    return figures


def headline(details: dict[str, dict[str, Any]]) -> dict[str, Any]:
    signing, tick = details["signing"], details["tick_to_order"]
    return {
        "tick_to_order_us": tick["tick_to_order_us"],
        "sim_frame_to_order_us": tick["sim_frame_to_order_us"],
        "signing": {key: signing[key] for key in ("hip3_us", "sdk_us", "ratio")},
        "feed_frames_per_s": details["feed"]["frames_parsed_per_s"],
        "signal_evals_per_s": details["signal"]["signal_evals_per_s"],
        "engine_orders_per_s": details["engine"]["engine_orders_per_s"],
        "startup_to_ready_s": tick["startup_to_ready_s"],
    }


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "system": f"{platform.system()} {platform.release()}",
        "machine": platform.machine(),
        "processor": _cpu_model(),
        "cpus": os.cpu_count(),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> None:
    quick = "--quick" in sys.argv[1:]
    started = time.perf_counter()
    details = {name: run(script, QUICK_ARGS[name] if quick else []) for name, script in BENCHMARKS.items()}
    figures = {
        **headline(details),
        "machine": machine(),
        "elapsed_s": round(time.perf_counter() - started, 1),
        "quick": quick,
        "details": details,
    }
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
