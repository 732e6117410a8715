"""User-facing errors: the command line prints ``error: <message>`` on one line and exits 2."""

from __future__ import annotations


class DiscernError(Exception):
    """Bad input or missing resources, explained in one line for the user."""


class ConfigError(DiscernError):
    """Unknown config key, wrong value type, or a bad config file."""


class DataError(DiscernError):
    """A dataset is missing, corrupt or malformed."""


class OfflineError(DataError):
    """A download that could not reach its server (no internet access, or ``DISCERN_OFFLINE=1``)."""


class CheckpointError(DiscernError):
    """A checkpoint is missing, truncated or incompatible."""


class NotFoundError(DiscernError):
    """A requested record (a study, item, rater, participant or scenario) that does not exist."""
