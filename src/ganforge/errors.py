"""User-facing errors.

Every problem a user can fix (a bad config key, a missing dataset, a corrupt checkpoint) is raised
as a :class:`GanforgeError` whose message is one line naming the problem and the fix. The CLI
prints that line and exits with status 2, without a traceback unless ``--debug`` is given.
"""

from __future__ import annotations


class GanforgeError(Exception):
    """A problem the user can fix; ``str(err)`` is a one-line message with the fix."""


class ConfigError(GanforgeError):
    """Unknown key, wrong type, out-of-range value or an impossible combination."""


class DataError(GanforgeError):
    """A dataset that is missing, empty or unreadable."""


class CheckpointError(GanforgeError):
    """A checkpoint or run folder that cannot be read or does not match."""


class NonFiniteError(GanforgeError):
    """A loss or weight became NaN/Inf during training (the message names the step and loss)."""
