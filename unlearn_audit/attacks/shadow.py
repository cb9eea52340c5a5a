"""Shadow-model attack (Shokri, Stronati, Song, Shmatikov, "Membership Inference Attacks Against
Machine Learning Models", IEEE S&P 2017).

A binary attack classifier is trained on the outputs of shadow (reference) models, each row one
(model, example) pair labelled by whether that model trained on that example
(``reference_in``), and then applied to the target's outputs. Unlike LiRA it is a *population*
attack: one classifier for all examples, so it cannot account for per-example difficulty.

Features: the logit-scaled confidence φ under every augmentation query, plus the query-averaged
prediction entropy and modified entropy (our signals are reduced per example, so the classifier
sees these rather than Shokri's raw probability vectors). The classifier is a small MLP
(``classifier="mlp"``, as in Shokri et al.) or gradient-boosted trees (``"gbdt"``) on standardised
features; at most ``max_rows`` rows are sampled (seeded) to bound training time.
"""

from __future__ import annotations

import numpy as np

from unlearn_audit.attacks.base import Attack, AttackData, query_mean
from unlearn_audit.params import Param
from unlearn_audit.signals import SignalSet

# scikit-learn is imported inside the functions that use it: importing it here would add ~0.4 s
# to the start-up of every command.

CLASSIFIERS = ("mlp", "gbdt")


def features(signals: SignalSet) -> np.ndarray:
    """Attack-classifier features (..., N, Q + 2): φ per query, entropy, modified entropy."""
    return np.concatenate([
        np.asarray(signals.phi, dtype=np.float64),
        query_mean(signals.entropy)[..., None],
        query_mean(signals.modified_entropy)[..., None],
    ], axis=-1)


class ShadowModelAttack(Attack):
    """A classifier trained on reference-model signals labelled by membership."""

    name = "shadow"
    title = "Shadow-model classifier"
    citation = "Shokri et al., Membership Inference Attacks Against Machine Learning Models, IEEE S&P 2017"
    threat_model = ("black-box target outputs; reference (shadow) models with known membership on "
                    "the same or similar examples")
    requires = frozenset({"references", "reference_in"})
    min_references = 1
    params = {
        "classifier": Param("mlp", "attack classifier: an MLP (as Shokri et al.) or gradient-boosted trees", str,
                            choices=CLASSIFIERS),
        "max_rows": Param(20000, "most (model, example) rows the classifier trains on (a seeded sample)", int,
                          low=2),
        "seed": Param(0, "seed of the row sample and the classifier", int, low=0),
    }

    def _model(self):
        from sklearn.ensemble import HistGradientBoostingClassifier
        from sklearn.neural_network import MLPClassifier
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        if self.classifier == "mlp":
            clf = MLPClassifier(hidden_layer_sizes=(64,), max_iter=300, early_stopping=True,
                                random_state=self.seed)
        else:
            clf = HistGradientBoostingClassifier(max_iter=200, random_state=self.seed)
        return make_pipeline(StandardScaler(), clf)

    def _score(self, data: AttackData) -> np.ndarray:
        x = features(data.references).reshape(-1, data.n_queries + 2)
        y = np.asarray(data.reference_in, dtype=bool).reshape(-1)
        if y.all() or not y.any():
            self._fail("the reference models must include both members and non-members of the examples "
                       "to train the attack classifier")
        if y.size > self.max_rows:
            rows = np.random.default_rng(self.seed).choice(y.size, self.max_rows, replace=False)
            x, y = x[rows], y[rows]
        model = self._model().fit(x, y.astype(int))
        return model.predict_proba(features(data.target))[:, 1]
