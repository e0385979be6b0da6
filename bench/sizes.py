"""``bench sizes``: what Transform and the Trainer write, per unit of what they were given.

* Transformed bytes per image / input JPEG bytes per image: the uncompressed TFRecords
  Transform writes (the raw bytes of a uint8 227x227x3 crop, the pixel statistics and labels
  per record) against the encoded images it read.
* Pushed SavedModel bytes / float32 weight bytes: the Trainer's serving model (what the Pusher
  copies: weights, the Transform graph, three signatures) against 4 bytes per model variable.

The Trainer runs 0 steps: sizes do not depend on training.
"""

from __future__ import annotations

import os

from bench import images, output, pipeline_run
from pipeline import configs


def directory_bytes(path: str) -> int:
    return sum(
        os.path.getsize(os.path.join(folder, name))
        for folder, _, names in os.walk(path)
        for name in names
    )


def weight_bytes(saved_model_dir: str) -> int:
    """4 bytes per element of every variable the SavedModel stores."""
    import tensorflow as tf

    prefix = os.path.join(saved_model_dir, "variables", "variables")
    reader = tf.train.load_checkpoint(prefix)
    dtypes = reader.get_variable_to_dtype_map()
    return sum(
        4 * int(tf.TensorShape(shape).num_elements())
        for name, shape in reader.get_variable_to_shape_map().items()
        if dtypes[name].is_floating
    )


def main(args) -> int:
    work_dir = args.work_dir or output.DEFAULT_WORK_DIR
    data_root, manifest = images.ensure_dataset(work_dir, args.images)
    trainer = pipeline_run.outputs(work_dir, data_root, configs.TRAINER)
    transformed = directory_bytes(trainer.inputs["examples"][0].uri)
    serving = os.path.join(trainer.uri("model"), "Format-Serving")
    saved_model, weights = directory_bytes(serving), weight_bytes(serving)
    jpeg_per_image = manifest["image_bytes"] / manifest["images"]
    transformed_per_image = transformed / manifest["images"]
    lines = [
        f"input: {jpeg_per_image / 1024:.1f} KiB of encoded image per record "
        f"({manifest['images']} images)",
        f"transformed: {transformed_per_image / 1024:.1f} KiB per record, "
        f"{transformed_per_image / jpeg_per_image:.2f}x the input image bytes",
        f"SavedModel: {saved_model / output.MIB:.1f} MiB, float32 weights "
        f"{weights / output.MIB:.1f} MiB: {saved_model / weights:.3f}x (target <= 1.05)",
    ]
    output.report(
        "sizes",
        lines,
        {
            "images": manifest["images"],
            "ratio": transformed_per_image / jpeg_per_image,
            "saved_model_ratio": saved_model / weights,
            "jpeg_bytes_per_image": jpeg_per_image,
            "transformed_bytes_per_image": transformed_per_image,
            "saved_model_bytes": saved_model,
            "weight_bytes": weights,
        },
    )
    return 0
