"""A custom ExampleGen that reads the raw ILSVRC-2012 JPEG tree (see README.md)."""
