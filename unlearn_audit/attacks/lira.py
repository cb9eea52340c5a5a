"""LiRA — the Likelihood Ratio Attack (Carlini, Chien, Nasr, Song, Terzis, Tramèr,
"Membership Inference Attacks From First Principles", IEEE S&P 2022).

For each example, the logit-scaled confidence φ of reference models that trained on it (IN) and
that did not (OUT) is modelled as a Gaussian (:mod:`~unlearn_audit.attacks.gaussian`); the
target's φ is then tested against the two fits.

* **online** (``lira``): score = log N(φ; μ_in, σ_in²) − log N(φ; μ_out, σ_out²), the per-query
  log-likelihood ratio averaged over augmentation queries (``plot.py`` ``score.mean(1)``);
* **offline** (``lira-offline``): only OUT references. The paper's one-sided test
  ``1 − Pr[Z > φ]`` with Z ~ N(μ_out, σ_out²); with several queries we combine the per-query
  one-sided p-values as −mean_q log Pr[Z_q > φ_q] (Fisher's statistic / Q), which is a monotone
  function of the paper's score for one query and does not saturate for strong members the way
  averaging ``1 − p`` does. (The reference demo instead uses the two-sided −log N(φ; μ_out, σ_out²),
  which also flags *under*-confident examples as members.)

Parameters: ``variance`` (``auto`` | ``per-example`` | ``fixed``; auto = fixed below 64
references, see :mod:`~unlearn_audit.attacks.gaussian`) and ``center`` (``median`` as in the
paper's code, or ``mean``).
"""

from __future__ import annotations

import numpy as np

from unlearn_audit.attacks.base import Attack, AttackData
from unlearn_audit.attacks.gaussian import CENTER, VARIANCE, GaussianFit, fit_gaussian, resolve_variance
from unlearn_audit.errors import ConfigError


class LiRA(Attack):
    """Online LiRA: per-example IN and OUT Gaussians, score = averaged log-likelihood ratio."""

    name = "lira"
    title = "LiRA (online)"
    citation = "Carlini et al., Membership Inference Attacks From First Principles, IEEE S&P 2022"
    threat_model = ("black-box target outputs; reference models trained with (IN) and without (OUT) "
                    "each example, e.g. a shadow bank on random halves")
    requires = frozenset({"references", "reference_in"})
    min_references = 2
    online = True
    params = {"variance": VARIANCE, "center": CENTER}

    # The statistic and the fits are separate so leave-one-out evaluation and U-LiRA reuse them.
    def fit(self, reference_phi: np.ndarray, reference_in: np.ndarray) -> tuple[GaussianFit | None, GaussianFit]:
        """Fit the IN (``None`` when offline) and OUT Gaussians to reference φ (M, N, Q)."""
        reference_in = np.asarray(reference_in, dtype=bool)
        variance = resolve_variance(self.variance, reference_phi.shape[0])
        if self.online and not reference_in.any():
            raise ConfigError(f"attack {self.name!r} needs reference models trained on the examples (IN); "
                              f"none of the {reference_phi.shape[0]} is — use the offline variant")
        if not (~reference_in).any():
            raise ConfigError(f"attack {self.name!r} needs reference models that did not train on the "
                              f"examples (OUT); all {reference_phi.shape[0]} did")
        fit_in = (fit_gaussian(reference_phi, reference_in, center=self.center, variance=variance)
                  if self.online else None)
        fit_out = fit_gaussian(reference_phi, ~reference_in, center=self.center, variance=variance)
        return fit_in, fit_out

    def statistic(self, phi: np.ndarray, fit_in: GaussianFit | None, fit_out: GaussianFit) -> np.ndarray:
        """Score φ (N, Q) — or (M, N, Q) — against fitted Gaussians; higher = more member-like."""
        if self.online:
            return (fit_in.logpdf(phi) - fit_out.logpdf(phi)).mean(axis=-1)
        return -fit_out.logsf(phi).mean(axis=-1)

    def _score(self, data: AttackData) -> np.ndarray:
        fit_in, fit_out = self.fit(data.references.phi, data.reference_in)
        return self.statistic(data.target.phi, fit_in, fit_out)

    def score_references(self, data: AttackData) -> np.ndarray:
        """Leave-one-out scores (M, N): each reference model attacked with the others as references.

        Used to evaluate the attack on the bank itself (each reference's true membership is
        ``reference_in``) and, in U-LiRA, to measure per-example balanced accuracy. For every model
        and example, one model of the *other* group is left out too (the next one, cyclically), so
        both groups' fits have one model fewer, whichever group the scored model belongs to. With a
        plain leave-one-out a model is always scored against a smaller fit of its own group than of
        the other, which with few references biases the scores of the two groups apart (on
        identically distributed groups of 3 it moves balanced accuracy from 0.5 to ≈ 0.58).
        """
        self._validate(data)
        phi, keep = data.references.phi, np.asarray(data.reference_in, dtype=bool)
        m = phi.shape[0]
        if m - 2 < self.min_references:
            raise ConfigError(f"attack {self.name!r}: leave-one-out needs at least {self.min_references + 2} "
                              f"reference models, got {m}")
        order = np.arange(m)
        # one variance mode for the bank, as for a target scored against all m references
        variance = resolve_variance(self.variance, m)
        out = np.empty(keep.shape)
        for i in range(m):
            opposite = keep != keep[i][None, :]  # (M, N): models in the other group, per example
            # the first opposite-group model after i, cyclically (per example)
            rank = np.where(opposite, ((order - i) % m)[:, None], m)
            partner = rank.argmin(axis=0)
            has_partner = opposite[partner, np.arange(keep.shape[1])]
            used = np.ones_like(keep)
            used[i] = False
            cols = np.flatnonzero(has_partner)
            used[partner[cols], cols] = False
            others = np.flatnonzero(order != i)
            fits = self._fit_masked(phi[others], keep[others], used[others], variance)
            out[i] = self.statistic(phi[i], *fits)
        return out

    def _fit_masked(self, phi: np.ndarray, keep: np.ndarray, used: np.ndarray, variance: str):
        """Like :meth:`fit`, with ``used`` (M, N) excluding individual (model, example) statistics."""
        fit_in = (fit_gaussian(phi, keep & used, center=self.center, variance=variance) if self.online else None)
        fit_out = fit_gaussian(phi, ~keep & used, center=self.center, variance=variance)
        return fit_in, fit_out


class OfflineLiRA(LiRA):
    """Offline LiRA: only OUT references; one-sided test of φ against N(μ_out, σ_out²)."""

    name = "lira-offline"
    title = "LiRA (offline)"
    threat_model = "black-box target outputs; reference models that did not train on the examples"
    min_references = 1
    online = False
