"""Reading exception groups: Trio nurseries wrap what their tasks raised."""

from __future__ import annotations


def first_leaf(error: BaseException) -> BaseException:
    """The first exception that is not a group (the error itself when it is not one)."""
    leaf = error
    while isinstance(leaf, BaseExceptionGroup):
        leaf = leaf.exceptions[0]
    return leaf
