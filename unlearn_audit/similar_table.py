"""The near / far / N(F) table of ``unlearn-audit bench``: every method on the forget examples that
have a similar retained example, on those that do not, and on those retained examples themselves,
against two oracles.

Xu et al., "Forgetting Similar Samples: Can Machine Unlearning Do it Better?" (arXiv 2601.06938,
2026) find that retained examples similar to the forget set F keep its influence — retraining from
scratch without F keeps it too — so matching retraining can be met by doing nothing. The table
splits the examples as ``unlearn-audit probe`` does (:func:`~unlearn_audit.probes.similar.
retained_neighbours`, input similarity, threshold = the median held-out similarity, exact copies
always near):

* **F-near** — forget examples whose closest retained example of the class is at least that similar;
* **F-far** — the other forget examples (forget examples without any retained example of their
  class, as in class forgetting, are in neither);
* **N(F)** — every retained example near some forget example of its class: what carries F's
  influence, and what the influence oracle also leaves out.

Each model is audited against the **standard** oracle (references retrained on D \\ F) and the
**influence** oracle (retrained on D \\ (F ∪ N(F))); methods are always given F only. Per group:

* ``accuracy`` — % of the group the model classifies correctly;
* ``confidence`` — mean true-class probability, %;
* ``lira_flagged`` — per-example membership: the % of the group's examples that offline LiRA, with
  the oracle's K reference models as the OUT distribution, calls *member* at a 5 % false-positive
  rate, the threshold set on the same model's scores of the held-out examples (never trained on by
  any model). An example is flagged when the model is more confident on it than the oracle's models
  are, beyond what 95 % of unseen examples reach, so a model that behaves like the oracle on the
  group flags ≈ 5 %. A share per example rather than a mean LiRA score: the scores of a group are
  heavy-tailed (one memorised example dominates a mean), and a share reads the same for every group
  size. On N(F) the standard oracle's references trained on the examples themselves, so there the
  share reads "more confident than models that trained on them".

Accuracy and confidence are the model's own, the same in both of its rows; a **retrained
references** row per oracle gives the oracle's own values to compare them with (its LiRA cell is
empty: the references are the test's reference distribution). Cells are mean ± std over seeds
(over the K references for their rows).

**When.** The table needs the influence oracle's neighbours, and means something where similar
retained examples exist; it is computed with ``--oracle influence`` or when the scenario plants
similar samples (``--similar``), training the other oracle's references as needed (K models, cached
in the store). Otherwise the result carries a note saying how to get it, not an empty table.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from unlearn_audit.audit import ModelSignals, offline_lira, seed_summary
from unlearn_audit.probes.similar import InfluenceOracle
from unlearn_audit.signals import SignalSet
from unlearn_audit.stats import tpr_at_fpr

GROUPS = ("F-near", "F-far", "N(F)")
#: Each group's cells (all percentages), key → column title, in table order.
GROUP_METRICS = {"accuracy": "acc %", "confidence": "conf %", "lira_flagged": "LiRA flagged %"}
#: The false-positive rate (on held-out examples) at which LiRA's per-example test calls a member.
FLAG_FPR = 0.05
#: The row of an oracle's own retrained models.
REFERENCES = "retrained references"


def not_computed() -> dict:
    """What a bench without the table carries instead of it."""
    return {"computed": False,
            "note": "near / far / N(F) table: not computed — it audits the forget examples with and without a "
                    "similar retained example, and those neighbours, against models retrained without F and "
                    "without F ∪ N(F); run bench with --oracle influence (or on a scenario with --similar) for it."}


@dataclass(frozen=True)
class SimilarityGroups:
    """The three groups as masks: F-near and F-far over the forget set, N(F) over the retain set
    (both in the order of :class:`~unlearn_audit.audit.ModelSignals`)."""

    forget: dict[str, np.ndarray]
    neighbours: np.ndarray
    threshold: float

    @classmethod
    def of(cls, oracle: InfluenceOracle, split) -> SimilarityGroups:
        return cls({"F-near": oracle.forget_parts["near"], "F-far": oracle.forget_parts["far"]},
                   np.isin(split.retain, oracle.neighbours), oracle.threshold)

    def sizes(self) -> dict[str, int]:
        return {**{g: int(m.sum()) for g, m in self.forget.items()}, "N(F)": int(self.neighbours.sum())}

    def signals(self, ms: ModelSignals) -> dict[str, SignalSet]:
        """``ms`` restricted to each group."""
        return {**{g: ms.forget.take(np.flatnonzero(m)) for g, m in self.forget.items()},
                "N(F)": ms.retain.take(np.flatnonzero(self.neighbours))}


def group_metrics(ms: ModelSignals, groups: SimilarityGroups,
                  references: list[ModelSignals] | None) -> dict[str, dict[str, float | None]]:
    """Accuracy %, confidence % and (with ``references``) the LiRA-flagged % of ``ms`` on each group;
    None for an empty group."""
    mine = groups.signals(ms)
    flagged = dict.fromkeys(GROUPS)
    if references is not None:
        theirs = [groups.signals(r) for r in references]
        # one fit over every group and the held-out examples: the threshold and the group scores
        # come from the same reference distribution
        scores = offline_lira(SignalSet.concat([ms.heldout, *mine.values()]),
                              [SignalSet.concat([r.heldout, *t.values()]) for r, t in zip(references, theirs)])
        bounds = np.cumsum([ms.heldout.phi.shape[0]] + [s.phi.shape[0] for s in mine.values()])
        heldout = scores[:bounds[0]]
        for g, lo, hi in zip(mine, bounds[:-1], bounds[1:]):
            if hi > lo:
                flagged[g] = 100.0 * tpr_at_fpr(scores[lo:hi], heldout, fprs=(FLAG_FPR,))[0].tpr
    out = {}
    for g, s in mine.items():
        empty = s.phi.shape[0] == 0
        out[g] = {"accuracy": None if empty else 100.0 * float(s.correct[:, 0].mean()),
                  "confidence": None if empty else 100.0 * float(s.prob[:, 0].mean()),
                  "lira_flagged": flagged[g]}
    return out


def similarity_table(signals: dict[str, list[ModelSignals]], seeds: list[int],
                     oracle_references: dict[str, tuple[list[int], list[ModelSignals]]],
                     groups: SimilarityGroups) -> dict:
    """The table's JSON form: per (method, oracle) — a reference row first for each oracle — the
    per-seed group metrics (``runs``) and their mean ± std (``summary``).

    ``signals``: each method's models (one per seed of ``seeds``); ``oracle_references``: per oracle,
    its reference models' seeds and signals."""
    runs = []
    for oracle, (ref_seeds, references) in oracle_references.items():
        runs += [{"method": REFERENCES, "oracle": oracle, "seed": s, **group_metrics(r, groups, None)}
                 for s, r in zip(ref_seeds, references)]
        runs += [{"method": name, "oracle": oracle, "seed": s, **group_metrics(ms, groups, references)}
                 for name, models in signals.items() for s, ms in zip(seeds, models)]
    summary = []
    for oracle in oracle_references:
        for name in [REFERENCES, *signals]:
            mine = [r for r in runs if r["method"] == name and r["oracle"] == oracle]
            summary.append({"method": name, "oracle": oracle, "n": len(mine),
                            **{g: {key: seed_summary([r[g][key] for r in mine]) for key in GROUP_METRICS}
                               for g in GROUPS}})
    # the column titles and the reference row's name travel with the numbers: reports render plain data
    return {"computed": True, "threshold": groups.threshold, "flag_fpr": FLAG_FPR, "groups": groups.sizes(),
            "metrics": GROUP_METRICS, "references_row": REFERENCES, "runs": runs, "summary": summary}
