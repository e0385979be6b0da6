"""The UncompressedTransform component: TFX's Transform writing uncompressed TFRecords."""
