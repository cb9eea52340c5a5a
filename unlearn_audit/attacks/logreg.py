"""Logistic regression on the loss — the "simple MIA" of the NeurIPS 2023 Machine Unlearning
Challenge starting kit (Triantafillou et al., google-deepmind / unlearning-CIFAR10.ipynb).

The kit fits ``sklearn.linear_model.LogisticRegression`` on the per-example cross-entropy loss of
forget (member-labelled) versus test (non-member) examples, class-balanced by subsampling, and
reports the cross-validated accuracy (``StratifiedShuffleSplit(n_splits=10)``); ≈ 0.5 is what a
model retrained without the forget set scores. The kit itself notes this is "a different
evaluation than the one used in the competition" (see :mod:`~unlearn_audit.attacks.challenge`).

* :class:`LogisticLossAttack` (``logreg-loss``) fits the regression on calibration members vs
  non-members of the target and scores examples with its decision function;
* :func:`simple_mia` returns the kit's number (mean cross-validated accuracy).

The loss is averaged over augmentation queries (the kit uses one un-augmented query).
"""

from __future__ import annotations

import numpy as np

from unlearn_audit.attacks.base import Attack, AttackData, query_mean
from unlearn_audit.errors import ConfigError
from unlearn_audit.params import Param

# scikit-learn is imported inside the functions that use it: importing it here would add ~0.4 s
# to the start-up of every command.


def _balanced(members: np.ndarray, nonmembers: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Features (2n, 1) and labels with the larger group subsampled to the smaller's size."""
    rng = np.random.default_rng(seed)
    n = min(members.size, nonmembers.size)
    m = members if members.size == n else rng.choice(members, n, replace=False)
    o = nonmembers if nonmembers.size == n else rng.choice(nonmembers, n, replace=False)
    x = np.concatenate([m, o])[:, None]
    y = np.concatenate([np.ones(n, dtype=int), np.zeros(n, dtype=int)])
    return x, y


def simple_mia(member_loss, nonmember_loss, n_splits: int = 10, seed: int = 0) -> float:
    """The starting kit's MIA accuracy: mean CV accuracy of LogisticRegression on the loss.

    ``member_loss`` — losses of the examples whose membership is tested (the forget set);
    ``nonmember_loss`` — losses of known non-members (the test set). 0.5 = chance.
    """
    member_loss = np.asarray(member_loss, dtype=np.float64).ravel()
    nonmember_loss = np.asarray(nonmember_loss, dtype=np.float64).ravel()
    if min(member_loss.size, nonmember_loss.size) < n_splits:
        raise ConfigError(f"simple MIA needs at least {n_splits} member and non-member losses, "
                          f"got {member_loss.size} and {nonmember_loss.size}")
    if not (np.isfinite(member_loss).all() and np.isfinite(nonmember_loss).all()):
        raise ConfigError("simple MIA: losses contain NaN or infinite values")
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedShuffleSplit, cross_val_score

    x, y = _balanced(member_loss, nonmember_loss, seed)
    cv = StratifiedShuffleSplit(n_splits=n_splits, random_state=seed)
    return float(cross_val_score(LogisticRegression(), x, y, cv=cv, scoring="accuracy").mean())


class LogisticLossAttack(Attack):
    """Logistic regression on the loss, fit on the target's calibration members vs non-members."""

    name = "logreg-loss"
    title = "Logistic regression on loss"
    citation = ("NeurIPS 2023 Machine Unlearning Challenge starting kit (Triantafillou et al., "
                "google-deepmind/unlearning-CIFAR10.ipynb)")
    threat_model = ("black-box target losses on the examples, plus on known members (retain) and "
                    "known non-members (test) to fit the classifier")
    requires = frozenset({"calibration_members", "calibration_nonmembers"})
    params = {"seed": Param(0, "seed of the class-balancing subsample", int, low=0)}

    def _score(self, data: AttackData) -> np.ndarray:
        from sklearn.linear_model import LogisticRegression

        x, y = _balanced(query_mean(data.calibration_members.loss),
                         query_mean(data.calibration_nonmembers.loss), self.seed)
        clf = LogisticRegression().fit(x, y)
        return clf.decision_function(query_mean(data.target.loss)[:, None])
