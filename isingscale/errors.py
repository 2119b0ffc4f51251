"""The one exception type users see.

Every problem with user input (a bad lattice size, a corrupt file, a checkpoint
for the wrong data) raises :class:`IsingScaleError` with a one-line message that
names the problem. The CLI prints that line and exits non-zero; it never shows a
traceback for these.
"""


class IsingScaleError(ValueError):
    """Bad input or state, described in one line for the user."""
