"""The CodecTrainer's executor: TFX's generic Trainer executor, with the examples' codec in
``fn_args``.

``run_fn`` gets file patterns, not artifacts, so it cannot see the ``compression`` custom
property that the ``UncompressedTransform`` sets on ``transformed_examples``. This executor
reads it from the input artifacts (``data.compression``) and hands ``run_fn`` a ``CodecFnArgs``:
TFX's ``FnArgs`` plus ``examples_compression`` (``NONE`` or ``GZIP``). Nothing else changes.
"""

from __future__ import annotations

import attr
from tfx.components.trainer import executor as tfx_trainer_executor
from tfx.components.trainer import fn_args_utils
from tfx.types import standard_component_specs

from data import compression


@attr.s
class CodecFnArgs(fn_args_utils.FnArgs):
    """TFX's ``FnArgs`` and the codec of the TFRecords behind ``train_files``/``eval_files``."""

    examples_compression = attr.ib(type=str, default=None)


class Executor(tfx_trainer_executor.GenericExecutor):
    def _GetFnArgs(self, input_dict, output_dict, exec_properties) -> CodecFnArgs:
        fn_args = super()._GetFnArgs(input_dict, output_dict, exec_properties)
        return CodecFnArgs(
            **attr.asdict(fn_args, recurse=False),
            examples_compression=compression.codec_of_all(
                input_dict[standard_component_specs.EXAMPLES_KEY]
            ),
        )
