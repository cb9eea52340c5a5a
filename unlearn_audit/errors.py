"""User-facing errors.

Every exception defined here is caught by the CLI, printed as one line on stderr and mapped to
exit code 2 (bad input or usage). Messages say what is wrong *and* how to fix it.
"""

from __future__ import annotations


class UnlearnAuditError(Exception):
    """Base class of every error the user can fix by changing input or configuration."""


class ConfigError(UnlearnAuditError):
    """A configuration key or CLI option has an invalid value."""


class DataError(UnlearnAuditError):
    """A dataset cannot be found or loaded, or a split / forget spec is invalid."""


class CheckpointError(UnlearnAuditError):
    """A checkpoint is missing, corrupt, or does not match the requested architecture."""


class TrainingDivergedError(UnlearnAuditError):
    """Training produced a NaN or infinite loss; nothing was saved."""


class StoreError(UnlearnAuditError):
    """The model store or an output directory cannot be used."""


class WorkerError(UnlearnAuditError):
    """A worker process of the process backend died before finishing its models."""
