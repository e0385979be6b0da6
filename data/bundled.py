"""Files that ship inside the package: the bundled sample, some of its photographs, and the
curated schemas.

The sample is the default ``--data-root``; the photos are the first validation image of each
of its classes as plain JPEG files (byte for byte the records' ``image/encoded``, under their
ILSVRC-2012 names), for ``alexnet-tfx predict``; the schemas are the record contract as TFDV
reads it, one per record format, imported by the pipeline instead of inferred from the data.
"""

from __future__ import annotations

import os

DATA_DIR = os.path.dirname(os.path.abspath(__file__))
SAMPLE_DIR = os.path.join(DATA_DIR, "sample")
PHOTOS_DIR = os.path.join(DATA_DIR, "photos")
SCHEMA_DIR = os.path.join(DATA_DIR, "schema")


def schema_file(record_format: str, schema_dir: str = SCHEMA_DIR) -> str:
    """The schema of ``record_format`` (``data.records.FORMATS``) under ``schema_dir``."""
    return os.path.join(schema_dir, f"{record_format}.pbtxt")
