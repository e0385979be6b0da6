"""Which codec an Examples artifact's TFRecords use: read from the artifact, never guessed.

The writer states it: ``components.uncompressed_transform`` sets the custom property
``compression`` (``NONE`` or ``GZIP``) on the ``transformed_examples`` it writes. Every reader
gets it from the artifact: the Trainer's ``run_fn`` through ``fn_args.examples_compression``
(``components.codec_trainer`` puts it there), ``bench`` from the artifact in ML Metadata, tests
from the artifact they made. An Examples artifact without the property was written by one of
TFX's own writers (ExampleGen, TFX's Transform), which write GZIP only: TFX reads such
artifacts as ``tfrecords_gzip`` too (``tfx.components.util.examples_utils.get_file_format``).

The values are names, not tf.data's ``compression_type`` strings, because tf.data spells "no
compression" as the empty string, which ML Metadata and the Kubeflow metadata JSON would carry
as a value indistinguishable from an unset one. ``tf_compression_type`` maps them.
"""

from __future__ import annotations

PROPERTY = "compression"
NONE = "NONE"
GZIP = "GZIP"
# The property's value -> tf.data / tf.io's ``compression_type``.
_TF_COMPRESSION_TYPE = {NONE: "", GZIP: "GZIP"}
# What TFX's own Examples writers produce; an artifact without the property is theirs.
TFX_DEFAULT = GZIP


def tf_compression_type(codec: str) -> str:
    """``NONE`` -> "" and ``GZIP`` -> "GZIP", as ``tf.data.TFRecordDataset`` takes them."""
    try:
        return _TF_COMPRESSION_TYPE[codec]
    except KeyError:
        raise ValueError(
            f"unknown TFRecord codec {codec!r}; expected one of {sorted(_TF_COMPRESSION_TYPE)}"
        ) from None


def set_codec(artifact, codec: str) -> None:
    """Records ``codec`` on a TFX ``Artifact`` (an Examples artifact its executor wrote)."""
    tf_compression_type(codec)  # refuses unknown names
    artifact.set_string_custom_property(PROPERTY, codec)


def codec_of(artifact) -> str:
    """``NONE`` or ``GZIP``: the codec of a TFX ``Artifact`` or an ML Metadata ``Artifact``
    proto (as ``pipeline.metadata`` returns them). Without the property: TFX's ``GZIP``.

    A TFX ``Artifact`` is read with ``get_custom_property``: on Kubeflow, the launcher hands
    custom properties back as JSON values, not as the string set here.
    """
    if hasattr(artifact, "get_custom_property"):
        codec = artifact.get_custom_property(PROPERTY)
    else:
        properties = artifact.custom_properties
        codec = properties[PROPERTY].string_value if PROPERTY in properties else None
    if codec is None:
        return TFX_DEFAULT
    tf_compression_type(codec)
    return codec


def codec_of_all(artifacts) -> str:
    """The one codec of several artifacts (a channel's list); an error if they differ."""
    codecs = {codec_of(a) for a in artifacts}
    if len(codecs) != 1:
        raise ValueError(f"Examples artifacts with different codecs {sorted(codecs)} (or none)")
    return codecs.pop()


def compression_type_of(artifact) -> str:
    """tf.data's ``compression_type`` for the TFRecords of ``artifact``."""
    return tf_compression_type(codec_of(artifact))
