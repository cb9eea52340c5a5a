"""User-facing errors.

Every exception defined here is caught by the CLI and printed as one line on stderr. Messages say
what is wrong *and* how to fix it. Exit codes (documented in docs/commands.md):

* 2 — bad input or usage (every :class:`UnlearnAuditError` but the two below);
* 4 — the machine cannot do what was asked (:class:`EnvironmentProblem`: disk full, a read-only or
  unwritable store or output, a worker killed); finished work is kept, and the same command goes on;
* 5 — an internal error (a bug): one line naming it and the file the traceback was written to.

``verify`` uses 0 / 1 / 3 for PASS / FAIL / INCONCLUSIVE, so none of these can read as a verdict.

A library caller can catch them by this package's base class, :class:`UnlearnAuditError`, or by the
standard exception each one also is — the one Python itself raises for the same kind of problem:

* :class:`ConfigError` — ``ValueError``: an argument or setting has a bad value;
* :class:`ShapeError` — a :class:`ConfigError`, so a ``ValueError`` too (numpy's own choice for
  arrays whose shapes do not fit): arrays of the wrong number of dimensions or mismatched sizes;
* :class:`DataError` — ``ValueError``: a dataset, split or forget spec is invalid or unreadable;
* :class:`CheckpointError` — ``ValueError``: a checkpoint is corrupt or does not fit the scenario;
* :class:`TrainingDivergedError` — ``FloatingPointError``: the loss became NaN or infinite;
* :class:`StoreError` — ``OSError``: the store or an output folder cannot be used;
* :class:`EnvironmentProblem` — ``OSError``: disk full, no permission (what the OS reported);
  :class:`StoreWriteError` is both a store error and one of these; :class:`WorkerError` is also a
  ``ChildProcessError``.

(:class:`~unlearn_audit.stats.StatsInputError`, bad input to a statistic, is a ``ValueError`` too.)
So ``except ValueError`` around a call with a user's settings catches a bad setting, and
``except OSError`` around a build catches a full disk, as it would without this package.
"""

from __future__ import annotations


class UnlearnAuditError(Exception):
    """Base class of every error the user can fix by changing input, configuration or the machine."""


class ConfigError(UnlearnAuditError, ValueError):
    """A configuration key, CLI option or API argument has an invalid value."""


class ShapeError(ConfigError):
    """Arrays given to a computation have the wrong number of dimensions or mismatched sizes."""


class DataError(UnlearnAuditError, ValueError):
    """A dataset cannot be found or loaded, or a split / forget spec is invalid."""


class CheckpointError(UnlearnAuditError, ValueError):
    """A checkpoint is missing, corrupt, or does not match the requested architecture."""


class TrainingDivergedError(UnlearnAuditError, FloatingPointError):
    """Training produced a NaN or infinite loss; nothing was saved."""


class StoreError(UnlearnAuditError, OSError):
    """The model store or an output directory cannot be used."""


class EnvironmentProblem(UnlearnAuditError, OSError):
    """The machine, not the input, stops the work: disk full, no permission, a killed worker."""


class StoreWriteError(StoreError, EnvironmentProblem):
    """The store cannot be written (no space left, read-only, permission denied)."""


class WorkerError(EnvironmentProblem, ChildProcessError):
    """A worker process of the process backend died before finishing its models."""
