"""Similar-sample probe: do retained examples similar to the forget set keep its influence alive?

Xu et al., "Forgetting Similar Samples: Can Machine Unlearning Do it Better?" (arXiv 2601.06938,
2026) report that when the training set holds samples similar to the forget targets, every method,
retraining from scratch included, leaves the targets' effect in place. Their construction and
metrics were not available to us (``reference/methods.md`` §1d marks them unobtained); this probe is
our generic version of the check they motivate.

For each forget example the probe finds the closest retained example with the same label (cosine
similarity of the standardised inputs, or of the penultimate features of the first retrained
reference, which never saw F) and splits F into **near** (similarity ≥ ``threshold``; exact copies
always), **far**, and — where the retain set holds no example of its class, as in class-wise
forgetting — *class not retained*. Held-out examples are split the same way against the retain
set: no model trained on them, so their near/far difference is what closeness to the training set
does by itself. The default threshold is the median held-out similarity, which works in either
space (*near*: closer to the retain set than an unseen example typically is); an absolute cosine
(e.g. 0.99 on inputs) flags near-copies instead. The **retained neighbours** N(F) are every retained
example at least ``threshold`` similar to a forget example of its class (exact copies included) —
all of them, not only the closest, so two planted copies of an example are both in N(F). For each
part of F and of the held-out set, and for N(F) itself (what unlearning F did to the examples that
carry it), the probe reports the accuracy and mean true-class probability of the target, of the
retrained references (trained on R = D \\ F) and of the originals (trained on D).

Reading it: if the retrained references are about as accurate and confident on F-near as the
originals, the retained neighbours carry F's information — the retraining oracle keeps it, so no
unlearning method can be asked to remove it while the neighbours stay. The stronger oracle drops
them too: with ``retrain_without`` the probe also reports models retrained on D \\ (F ∪ N(F)); and
the result lists the dataset indices of F ∪ N(F) (``forget_and_neighbours``), usable as
``--forget dataset-indices:FILE`` to run any audit against that oracle.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from unlearn_audit.data.similar import Neighbours, find_retained_neighbours
from unlearn_audit.errors import ConfigError
from unlearn_audit.models.zoo import head_inputs
from unlearn_audit.signals import SignalSet, compute_logits
from unlearn_audit.task import TensorSet

if TYPE_CHECKING:
    from unlearn_audit.scenario import Scenario
    from unlearn_audit.task import ScenarioView

SPACES = ("inputs", "features")
#: The model set retrained without F and its near neighbours (``retrain_without``).
STRONGER = "retrained w/o neighbours"


@dataclass(frozen=True)
class GroupRow:
    """Accuracy and mean true-class probability (both in %) of each model set on one group."""

    group: str
    n: int
    accuracy: dict[str, float]
    confidence: dict[str, float]


@dataclass
class SimilarSampleProbe:
    """What the probe found; :meth:`to_dict` is its JSON form."""

    space: str
    threshold: float
    forget_indices: np.ndarray  # dataset indices of F
    neighbours: Neighbours  # per forget example, its closest same-class retained example
    neighbour_indices: np.ndarray  # dataset index of that neighbour (-1: none of its class retained)
    neighbourhood: np.ndarray  # N(F): dataset indices of every retained example near a forget example
    rows: list[GroupRow] = field(default_factory=list)

    @property
    def near(self) -> np.ndarray:
        return self.neighbours.near(self.threshold)

    @property
    def forget_and_neighbours(self) -> np.ndarray:
        """Dataset indices of F ∪ N(F) (sorted)."""
        return np.union1d(self.forget_indices, self.neighbourhood)

    def to_dict(self) -> dict:
        return {
            "space": self.space,
            "threshold": self.threshold,
            "forget": int(self.forget_indices.size),
            "near": int(self.near.sum()),
            "exact_copies": int(self.neighbours.exact.sum()),
            "retained_neighbours": int(self.neighbourhood.size),
            "groups": [{"group": r.group, "n": r.n, "accuracy": _nan_to_none(r.accuracy),
                        "confidence": _nan_to_none(r.confidence)} for r in self.rows],
            "examples": [
                {"index": int(i), "neighbour": int(j), "similarity": None if np.isnan(s) else float(s),
                 "exact": bool(e), "near": bool(n)}
                for i, j, s, e, n in zip(self.forget_indices, self.neighbour_indices, self.neighbours.similarity,
                                         self.neighbours.exact, self.near)
            ],
            "forget_and_neighbours": self.forget_and_neighbours.tolist(),
        }


def _nan_to_none(values: dict[str, float]) -> dict[str, float | None]:
    return {k: None if np.isnan(v) else v for k, v in values.items()}


def closeness_parts(neighbours: Neighbours, threshold: float) -> dict[str, np.ndarray]:
    """Masks over the queries of ``neighbours``: ``near`` (closest retained example of the class at
    least ``threshold`` similar; exact copies always), ``far``, and — only where some query has no
    retained example of its class — ``class not retained``. The probe's rows and the near / far
    table of ``bench`` both split F with this."""
    near, alone = neighbours.near(threshold), np.isnan(neighbours.similarity)
    parts = {"near": near, "far": ~near & ~alone}
    if alone.any():
        parts["class not retained"] = alone
    return parts


def _group_rows(name: str, neighbours: Neighbours | None, threshold: float,
                signals: dict[str, SignalSet]) -> list[GroupRow]:
    """Rows of one group: near, far, and without any retained example of its class if there are
    such — or a single row when ``neighbours`` is None. ``signals`` per model set, (models, N, 1)."""
    n = next(iter(signals.values())).correct.shape[1]
    if neighbours is None:
        parts = [(name, np.ones(n, dtype=bool))]
    else:
        parts = [(f"{name}, {part}", mask) for part, mask in closeness_parts(neighbours, threshold).items()]
    rows = []
    for label, mask in parts:
        empty = not mask.any()
        acc = {k: float("nan") if empty else float(100 * s.correct[:, mask, 0].mean()) for k, s in signals.items()}
        conf = {k: float("nan") if empty else float(100 * s.prob[:, mask, 0].mean()) for k, s in signals.items()}
        rows.append(GroupRow(label, int(mask.sum()), acc, conf))
    return rows


def check_threshold(threshold: float | None) -> None:
    """The similarity threshold is a cosine (``None``: the default, chosen from the data)."""
    if threshold is not None and not -1.0 <= threshold <= 1.0:
        raise ConfigError(f"the similarity threshold is a cosine: it must be in [-1, 1], got {threshold}")


def retained_neighbours(scenario: ScenarioView, *, space: str = "inputs", threshold: float | None = None,
                        feature_model: nn.Module | None = None) -> tuple[np.ndarray, float, Neighbours, Neighbours]:
    """N(F): the dataset indices of every retained example at least ``threshold`` similar to a forget
    example of its class (exact copies always), the threshold used (None: the median held-out
    similarity), and each forget and audit held-out example's closest retained neighbour.
    ``space="features"`` compares ``feature_model``'s penultimate features (a model that never saw F)."""
    if space not in SPACES:
        raise ConfigError(f"unknown similarity space {space!r}; use one of {', '.join(SPACES)}")
    check_threshold(threshold)
    if space == "features" and feature_model is None:
        raise ConfigError("similarity in feature space needs a model that never saw the forget set")
    ds, split, accel = scenario.dataset, scenario.split, scenario.accel

    def part(indices: np.ndarray) -> TensorSet:
        where = torch.as_tensor(indices)
        return TensorSet(ds.x[where], ds.y[where])

    def features(x: torch.Tensor) -> torch.Tensor:
        return head_inputs(feature_model, accel.prepare_inputs(x))[0]

    positions, threshold, nb, held = find_retained_neighbours(
        part(split.forget), part(split.retain), part(split.audit_heldout), threshold=threshold,
        embed=features if space == "features" else None)
    return np.sort(split.retain[positions]), threshold, nb, held


def probe_similar_samples(scenario: ScenarioView, target: nn.Module, retrained: list[nn.Module],
                          originals: list[nn.Module], *,
                          space: str = "inputs", threshold: float | None = None,
                          retrain_without: Callable[[np.ndarray], list[nn.Module]] | None = None
                          ) -> SimilarSampleProbe:
    """Run the probe (see the module docstring) for ``target`` on ``scenario``'s forget set;
    ``threshold`` None: the median held-out similarity. ``retrain_without(indices)``, if given,
    returns models retrained without the examples at those dataset indices; it is called with F and
    its near neighbours, and those models are reported beside the others (the stronger oracle)."""
    if not retrained or not originals:
        raise ConfigError("the similar-sample probe needs at least one retrained and one original model")
    kept, threshold, nb, held = retained_neighbours(scenario, space=space, threshold=threshold,
                                                    feature_model=retrained[0])
    ds, split, accel = scenario.dataset, scenario.split, scenario.accel
    forget, heldout, retain = split.forget, split.audit_heldout, split.retain
    x, y = ds.x, ds.y
    neighbour_indices = np.where(nb.index >= 0, retain[np.maximum(nb.index, 0)], -1)
    every = np.concatenate([forget, heldout, kept])
    models = {"target": [target], "retrained": list(retrained), "originals": list(originals)}
    if retrain_without is not None:
        if not kept.size:
            raise ConfigError("no forget example has a near retained neighbour at this threshold, so there is no "
                              "stronger oracle to train; lower --threshold or leave out --stronger-oracle")
        models[STRONGER] = list(retrain_without(np.union1d(forget, kept)))
    x_every, y_every = x[torch.as_tensor(every)], y.numpy()[every]
    signals = {key: SignalSet.from_logits(compute_logits(ms, x_every, ("identity",), accel), y_every)
               for key, ms in models.items()}
    bounds = np.cumsum([0, forget.size, heldout.size, kept.size])
    part = [{k: s.take(np.arange(bounds[i], bounds[i + 1])) for k, s in signals.items()} for i in range(3)]
    rows = _group_rows("forget", nb, threshold, part[0]) + _group_rows("heldout", held, threshold, part[1])
    # the retained neighbours themselves: what unlearning F does to the examples that carry it
    rows += _group_rows("retained neighbours", None, threshold, part[2])
    return SimilarSampleProbe(space=space, threshold=float(threshold), forget_indices=forget.copy(), neighbours=nb,
                              neighbour_indices=neighbour_indices, neighbourhood=kept, rows=rows)


@dataclass
class InfluenceOracle:
    """Retraining without the forget set *and* its near retained neighbours N(F) (Xu et al. 2026):
    what retraining would leave if the examples that carry the forget set's influence went too."""

    scenario: Scenario        # the scenario whose forget set is F ∪ N(F): its retrained bank is the oracle
    neighbours: np.ndarray    # N(F), dataset indices
    threshold: float          # input similarity from which a retained example counts as near
    forget_parts: dict[str, np.ndarray]  # F's near / far masks (closeness_parts)

    def describe(self) -> dict:
        return {"kind": "influence", "neighbours": int(self.neighbours.size), "threshold": self.threshold,
                "neighbour_indices": self.neighbours.tolist()}


def influence_oracle(scenario: Scenario) -> InfluenceOracle:
    """N(F) chosen as `unlearn-audit probe` chooses it (input similarity, the median held-out
    similarity as threshold, exact copies always), and the scenario retrained without F ∪ N(F)."""
    neighbours, threshold, nb, _ = retained_neighbours(scenario)
    if not neighbours.size:
        raise ConfigError("no retained example is near a forget example, so the influence oracle is the standard "
                          "one; use --oracle standard")
    label = f"{scenario.split.forget_spec} + {neighbours.size} near neighbours"
    return InfluenceOracle(scenario.forgetting(np.union1d(scenario.split.forget, neighbours), label), neighbours,
                           threshold, closeness_parts(nb, threshold))
