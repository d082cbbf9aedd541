"""The one exception type for problems a user can cause and fix.

Everything that a user can get wrong (a missing file, a bad checkpoint, a failed download, an unknown
name) raises `NadaError` with a single line that names the problem and the way out. The CLI prints
that line as `error: ...` and exits with code 2, without a traceback. Anything else is a bug and keeps
its traceback.
"""


class NadaError(Exception):
    """A user-facing error whose message is one line: the problem, then the fix."""

    def __init__(self, message: str):
        # Multi-line messages break the CLI's one-line contract; fold them here, once.
        super().__init__(" ".join(str(message).split()))
