"""The ``alexnet-tfx`` subcommands: each module declares its flags beside its handler.

A handler turns flags into typed values (a checked data root, resolved settings, platform
settings) and calls the module that does the work; nothing below this package sees an
``argparse.Namespace``. These modules import nothing heavy at the top, so ``--help`` and flag
errors answer at once.
"""
