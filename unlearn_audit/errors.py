"""User-facing errors.

Every exception defined here is caught by the CLI and printed as one line on stderr. Messages say
what is wrong *and* how to fix it. Exit codes (documented in the README):

* 2 — bad input or usage (every :class:`UnlearnAuditError` but the two below);
* 4 — the machine cannot do what was asked (:class:`EnvironmentProblem`: disk full, a read-only or
  unwritable store or output, a worker killed); finished work is kept, and the same command goes on;
* 5 — an internal error (a bug): one line naming it and the file the traceback was written to.

``verify`` uses 0 / 1 / 3 for PASS / FAIL / INCONCLUSIVE, so none of these can read as a verdict.
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


class EnvironmentProblem(UnlearnAuditError):
    """The machine, not the input, stops the work: disk full, no permission, a killed worker."""


class StoreWriteError(StoreError, EnvironmentProblem):
    """The store cannot be written (no space left, read-only, permission denied)."""


class WorkerError(EnvironmentProblem):
    """A worker process of the process backend died before finishing its models."""
