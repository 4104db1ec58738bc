"""The lifespan state: each started value under its names, lifespan managers merged."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lifespan_di.core.graph import ResourceNode

__all__ = ["Unpublishable", "build_state"]


class Unpublishable(Exception):
    """The started values cannot make one state; ``reason`` says why."""

    def __init__(self, reason: str, node: ResourceNode) -> None:
        super().__init__(reason)
        self.reason = reason
        self.node = node


def build_state(
    started: Sequence[ResourceNode], values: Mapping[ResourceNode, Any]
) -> dict[str, Any]:
    """Return the state of the ``started`` resources, given in start order.

    Raises:
        Unpublishable: A key is published twice, or a lifespan manager yielded
            something other than a mapping.
    """
    state: dict[str, Any] = {}
    owners: dict[str, ResourceNode] = {}
    for node in started:
        value = values[node]
        if node.merges_state and not isinstance(value, Mapping):
            reason = (
                f"Cannot use {node.path}: it yielded {type(value).__name__}, "
                "not a mapping of state values. Yield a dict."
            )
            raise Unpublishable(reason, node)
        items = (
            value.items()
            if node.merges_state
            else [(name, value) for name in node.names]
        )
        for key, item in items:
            if key in owners:
                reason = (
                    f"Cannot publish the state key {key!r} of {node.path}: "
                    f"{owners[key].path} publishes it too. Rename one of them."
                )
                raise Unpublishable(reason, node)
            owners[key] = node
            state[key] = item
    return state
