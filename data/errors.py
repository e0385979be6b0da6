"""``UserError``: a mistake the user can fix (a flag, a file, a directory), not a bug.

It sits at the bottom of the import graph so that any layer (the converter, the preflight, the
runners, the commands) can raise it without importing the CLI; the CLI prints its message as
one line and exits with status 2, with no traceback.
"""


class UserError(Exception):
    """A user error: the message names the thing (flag, file, record) and what to do."""
