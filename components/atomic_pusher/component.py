"""``AtomicPusher``: TFX's Pusher, same interface, with a push no reader sees half-done."""

from __future__ import annotations

from tfx.components.pusher import component as tfx_pusher_component
from tfx.dsl.components.base import executor_spec

from components.atomic_pusher import executor


class AtomicPusher(tfx_pusher_component.Pusher):
    """Pushes a blessed model to ``<base_directory>/<version>`` by copy-then-rename.

    Takes TFX Pusher's arguments; ``push_destination`` must be a filesystem one. Give it the id
    ``Pusher`` (``.with_id("Pusher")``) to keep a pipeline's node id, and so its history.
    """

    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(self, *, push_destination, **kwargs):
        # TFX's check exempts executors other than its own; this one needs a destination too.
        if push_destination is None:
            raise ValueError("AtomicPusher needs a push_destination (a filesystem one)")
        super().__init__(push_destination=push_destination, **kwargs)
