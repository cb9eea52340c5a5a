"""Scenario models → signals → attacks → per-model and per-group audit metrics.

The audit of a group of models (the K results of one unlearning method, or the K originals) is
made against K retrained reference models — models trained on the retain set R that never saw
the forget set F. Every number compares forget examples with held-out examples (never trained on;
for class-wise forgetting, those of the forgotten class) or unlearned models with retrained ones:

* UA / RA / TA — 100 − forget accuracy, retain and test accuracy (%); ``IC`` — for ``confusion:A,B``
  forget sets, the % of test images of A or B predicted as the other class (Goel et al.'s
  interclass-confusion test; None otherwise);
* ``mia_efficacy`` — SalUn / ℓ1-sparse SVC MIA-Efficacy (% of F predicted non-member);
* ``loss_auc`` — the global loss threshold, F vs held-out;
* ``lira_auc`` / ``lira_tpr1`` — offline LiRA with the retrained references as OUT models (they
  never saw F nor the held-out set), F vs held-out: AUC and TPR at 1 % FPR with its
  Clopper–Pearson interval;
* ``gap`` — SalUn's Avg. Gap (mean |Δ| over UA, RA, TA, MIA-Efficacy) to the mean of the
  retrained references; ``tow`` — RUM's tug-of-war (1 − |ΔFA|)(1 − |ΔRA|)(1 − |ΔTA|) to the same
  means, accuracies as fractions (1 = retraining);
* per group: ``ulira_acc`` — U-LiRA balanced accuracy of telling the group's models from the
  retrained references, example by example, leave-one-out (0.5 ideal) — U-LiRA (Hayes et al. 2024)
  with the group's K originals, all of which trained on F and then unlearned it, as the unlearned
  shadows; ``eps_forget_score`` / ``eps_final_score`` — the NeurIPS 2023 challenge forget score F
  from per-example ε̂ and F·(RA_u/RA_r)·(TA_u/TA_r) (1 ideal; resolution limited by K).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from unlearn_audit.attacks import AttackData, get_attack
from unlearn_audit.attacks.challenge import challenge_score
from unlearn_audit.attacks.svc import mia_efficacy
from unlearn_audit.attacks.ulira import per_example_balanced_accuracy
from unlearn_audit.metrics import UnlearningAccuracies, avg_gap, tow, unlearning_accuracies
from unlearn_audit.signals import SignalSet, compute_logits
from unlearn_audit.stats import roc_auc, tpr_at_fpr

if TYPE_CHECKING:
    from unlearn_audit.task import ScenarioView


def default_queries(augment: str) -> tuple[str, ...]:
    """Query a model the way it was trained: add the mirror image only if training flipped images."""
    return ("identity", "mirror") if "flip" in augment else ("identity",)


@dataclass(frozen=True)
class ModelSignals:
    """Signals of one model on the forget, held-out, retain and test examples, shapes (n, Q).

    ``heldout`` holds the non-members the forget set is compared with (:meth:`Split.nonmembers`:
    for class-wise forgetting, held-out examples of the forgotten class). Parts not asked for in
    :func:`model_signals` are ``None``.
    """

    forget: SignalSet | None
    heldout: SignalSet | None
    retain: SignalSet | None
    test: SignalSet | None
    interclass_confusion: float | None = None  # confusion:A,B scenarios: test A/B predicted as the other

    def accuracy(self, part: str) -> float:
        return float(getattr(self, part).correct[:, 0].mean())


PARTS = ("forget", "heldout", "retain", "test")


def model_signals(model, scenario: ScenarioView, queries: tuple[str, ...],
                  parts: tuple[str, ...] = PARTS) -> ModelSignals:
    """Run ``model`` once over the examples of the requested ``parts`` (default: all four)."""
    s = scenario.split
    where = {"forget": s.forget, "heldout": s.nonmembers(scenario.dataset), "retain": s.retain, "test": s.test}
    chosen = [where[p] for p in parts]
    idx = np.concatenate(chosen)
    logits = compute_logits([model], scenario.dataset.x[idx], queries, scenario.accel)[0]
    labels = scenario.dataset.y.numpy()[idx]
    signals = SignalSet.from_logits(logits, labels)
    bounds = np.cumsum([0] + [p.size for p in chosen])
    taken = {p: signals.take(np.arange(bounds[k], bounds[k + 1])) for k, p in enumerate(parts)}
    confusion = None
    if s.confusion is not None and "test" in parts:
        k = parts.index("test")
        test = slice(bounds[k], bounds[k + 1])
        confusion = interclass_confusion(logits[test, 0], labels[test], s.confusion)
    return ModelSignals(**{p: taken.get(p) for p in PARTS}, interclass_confusion=confusion)


def interclass_confusion(logits: np.ndarray, labels: np.ndarray, pair: tuple[int, int]) -> float:
    """Share of the examples of class A or B (``pair``) predicted as the other class of the pair."""
    a, b = pair
    mine = (labels == a) | (labels == b)
    if not mine.any():
        return float("nan")
    partner = np.where(labels[mine] == a, b, a)
    return float((np.asarray(logits)[mine].argmax(axis=-1) == partner).mean())


def _accuracies(ms: ModelSignals, mia: float):
    return unlearning_accuracies(ms.accuracy("forget"), ms.accuracy("retain"), ms.accuracy("test"), mia)


def _mia(ms: ModelSignals) -> float:
    return mia_efficacy(ms.retain.prob.mean(-1), ms.test.prob.mean(-1), ms.forget.prob.mean(-1))


def reference_profile(references: list[ModelSignals]) -> dict:
    """Mean UA / RA / TA / MIA-Efficacy of the retrained references: the target of every gap."""
    accs = [_accuracies(r, _mia(r)) for r in references]
    return {key: float(np.mean([getattr(a, key) for a in accs])) for key in ("ua", "ra", "ta", "mia")}


def basic_metrics(ms: ModelSignals) -> dict:
    """UA / RA / TA (%) and the loss-threshold AUC (F vs held-out): what needs no reference model."""
    loss = get_attack("loss").score(AttackData(target=SignalSet.concat([ms.forget, ms.heldout])))
    n_f = ms.forget.phi.shape[0]
    return {"UA": 100.0 * (1.0 - ms.accuracy("forget")), "RA": 100.0 * ms.accuracy("retain"),
            "TA": 100.0 * ms.accuracy("test"), "loss_auc": roc_auc(loss[:n_f], loss[n_f:]),
            "IC": None if ms.interclass_confusion is None else 100.0 * ms.interclass_confusion}


def _out_references(references: list[SignalSet], **population: SignalSet) -> dict:
    """AttackData fields for reference models that never trained on the examples (all OUT)."""
    ref = SignalSet.stack(references)
    return {"references": ref, "reference_in": np.zeros(ref.phi.shape[:2], dtype=bool), **population}


def offline_lira(target: SignalSet, references: list[SignalSet]) -> np.ndarray:
    """Offline-LiRA scores of ``target`` (N, Q) with ``references`` (each (N, Q), the same examples)
    as the OUT models; higher = more confident than the references are."""
    return get_attack("lira-offline").score(AttackData(target=target, **_out_references(references)))


#: RMIA as ReGUn scores it (``reference/methods.md`` §0.2): Pr(x) is the references' mean true-class
#: probability (a = 1), untempered (T = 1), so the ranking is ReGUn's log p_θ(y|x) − log mean_k p_k(y|x);
#: γ = 1 keeps near-saturated models' examples from tying at 0 (see the rmia module's "γ and ties").
RMIA_PARAMS = {"a": 1.0, "temperature": 1.0, "gamma": 1.0}


def rmia_auc(ms: ModelSignals, references: list[ModelSignals]) -> float:
    """Offline RMIA AUC, forget vs held-out, with the retrained references as OUT models and the test
    examples (no model trains on them, no method reads them) as the population z."""
    scores = get_attack("rmia-offline", **RMIA_PARAMS).score(AttackData(
        target=SignalSet.concat([ms.forget, ms.heldout]),
        **_out_references([SignalSet.concat([r.forget, r.heldout]) for r in references],
                          population=ms.test, reference_population=SignalSet.stack([r.test for r in references]))))
    n_f = ms.forget.phi.shape[0]
    return roc_auc(scores[:n_f], scores[n_f:])


def audit_model(ms: ModelSignals, references: list[ModelSignals], profile: dict) -> tuple[dict, dict]:
    """Per-model metrics and the offline-LiRA scores (for ROC plots) of one model."""
    mia = _mia(ms)
    acc = _accuracies(ms, mia)
    n_f = ms.forget.phi.shape[0]
    lira = offline_lira(SignalSet.concat([ms.forget, ms.heldout]),
                        [SignalSet.concat([r.forget, r.heldout]) for r in references])
    tpr1 = tpr_at_fpr(lira[:n_f], lira[n_f:], fprs=(0.01,))[0]
    target = UnlearningAccuracies(profile["ua"], profile["ra"], profile["ta"], profile["mia"])
    metrics = {
        **basic_metrics(ms), "mia_efficacy": mia,
        "lira_auc": roc_auc(lira[:n_f], lira[n_f:]),
        "lira_tpr1": tpr1.tpr, "lira_tpr1_ci": [tpr1.tpr_low, tpr1.tpr_high],
        "lira_tpr1_resolvable": tpr1.resolvable, "lira_tpr1_n_heldout": tpr1.n_neg,
        "rmia_auc": rmia_auc(ms, references),
        "gap": avg_gap(acc, target), "tow": tow(acc, target),
    }
    return metrics, {"forget": lira[:n_f].tolist(), "heldout": lira[n_f:].tolist()}


def seed_summary(values: list) -> dict | None:
    """Mean and std (ddof 1; 0 for one value) over seeds of a per-model metric; None where no model has it."""
    if all(v is None for v in values):
        return None
    vals = np.array(values, dtype=float)
    return {"mean": float(vals.mean()), "std": float(vals.std(ddof=1)) if vals.size > 1 else 0.0}


def audit_group(group: list[ModelSignals], references: list[ModelSignals]) -> dict:
    """U-LiRA balanced accuracy and the challenge forget score of a group against the references."""
    out: dict = {"ulira_acc": None, "eps_forget_score": None, "eps_final_score": None}
    phi = np.stack([m.forget.phi for m in group] + [r.forget.phi for r in references])  # (M, N_f, Q)
    member = np.zeros(phi.shape[:2], dtype=bool)
    member[: len(group)] = True
    attack = get_attack("ulira")
    if len(group) >= 2 and len(references) >= 2 and phi.shape[0] - 2 >= attack.min_references:
        data = AttackData(target=group[0].forget, references=SignalSet.stack([m.forget for m in group + references]),
                          reference_in=member)
        scores = attack.score_references(data)
        out["ulira_acc"] = float(np.nanmean(per_example_balanced_accuracy(scores, member)))
    if min(len(group), len(references)) >= 3:
        conf = phi.mean(-1)

        def mean_acc(models, part):
            return float(np.mean([m.accuracy(part) for m in models]))

        score = challenge_score(conf[: len(group)], conf[len(group):],
                                retain_acc_unlearned=mean_acc(group, "retain"),
                                retain_acc_retrained=mean_acc(references, "retain"),
                                test_acc_unlearned=mean_acc(group, "test"),
                                test_acc_retrained=mean_acc(references, "test"))
        out["eps_forget_score"] = score.forget_score
        out["eps_final_score"] = score.final_score
    return out
