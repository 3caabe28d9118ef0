"""`trio-run MODULE[:FUNC] [ARGS…]`: import MODULE and run its async `main` (or FUNC) under trio.run.

ARGS stay in sys.argv (sys.argv[0] becomes MODULE[:FUNC]), the way `python -m` leaves them. An int returned by
the function becomes the exit status.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import trio

USAGE = "usage: trio-run MODULE[:FUNC] [ARGS...]"
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class TargetError(Exception):
    """The target named on the command line cannot be found or is not an async function."""


def resolve_target(spec: str) -> Callable[[], Awaitable[Any]]:
    module_name, _, func_name = spec.partition(":")
    if not module_name:
        raise TargetError(f"no module in {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module_name.startswith(exc.name):
            raise TargetError(f"no module named {module_name!r}") from None
        raise
    target = getattr(module, func_name or "main", None)
    if target is None:
        raise TargetError(f"module {module_name!r} has no {func_name or 'main'!r}")
    if not inspect.iscoroutinefunction(target):
        raise TargetError(f"{spec} is not an async function")
    return target  # type: ignore[no-any-return]


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(USAGE, file=sys.stderr if not args else sys.stdout)
        return EXIT_USAGE if not args else 0
    try:
        target = resolve_target(args[0])
    except TargetError as exc:
        print(f"trio-run: {exc}", file=sys.stderr)
        return EXIT_USAGE
    sys.argv = args
    try:
        result = trio.run(target)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
