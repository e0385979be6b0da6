"""AtomicPusher as a TFX component: TFX Pusher's interface, this package's executor."""

import pytest
from tfx import v1 as tfx
from tfx.types import standard_artifacts

from components.atomic_pusher import executor
from components.atomic_pusher.component import AtomicPusher


def _channels():
    return {
        "model": tfx.dsl.Channel(type=standard_artifacts.Model),
        "model_blessing": tfx.dsl.Channel(type=standard_artifacts.ModelBlessing),
    }


def test_it_is_a_pusher_that_runs_the_atomic_executor():
    pusher = AtomicPusher(
        **_channels(),
        push_destination=tfx.proto.PushDestination(
            filesystem=tfx.proto.PushDestination.Filesystem(base_directory="/serving")
        ),
    ).with_id("Pusher")
    assert isinstance(pusher, tfx.components.Pusher)
    assert pusher.id == "Pusher"
    assert pusher.executor_spec.executor_class is executor.Executor
    assert pusher.outputs["pushed_model"].type is standard_artifacts.PushedModel
    assert '"/serving"' in pusher.exec_properties["push_destination"]


def test_a_push_destination_is_required():
    with pytest.raises(ValueError, match="AtomicPusher needs a push_destination"):
        AtomicPusher(**_channels(), push_destination=None)
