"""Attack orderings on real (tiny) models: a digits shadow bank trained once per module.

16 MLPs on balanced random halves of a 500-example universe U (each example IN for exactly 8
models, as in LiRA), plus an "original" model trained on D ⊂ U and a "retrained" model trained on
D \\ F. The models overfit (no weight decay, 40 epochs on 250 examples) so the membership signal
exists. Everything runs on one CPU thread with fixed seeds.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unlearn_audit.attacks import REGISTRY, AttackData, get_attack
from unlearn_audit.signals import SignalSet, compute_logits
from unlearn_audit.stats import roc_auc, tpr_at_fpr
from unlearn_audit.training import Recipe, train_model

torch.set_num_threads(1)

N_MODELS = 16
N_UNIVERSE, N_POPULATION, N_TEST, N_FORGET = 500, 300, 300, 50
RECIPE = Recipe(arch="mlp", epochs=40, batch_size=32, lr=0.05, weight_decay=0.0)


def _take(signals: SignalSet, models=None, examples=None) -> SignalSet:
    out = signals
    if models is not None:
        out = out.map(lambda a: np.take(a, models, axis=0))
    if examples is not None:
        out = out.take(examples, axis=-2)
    return out


@pytest.fixture(scope="module")
def bank(digits, accel):
    rng = np.random.default_rng(0)
    perm = rng.permutation(len(digits))
    universe = perm[:N_UNIVERSE]
    population = perm[N_UNIVERSE:N_UNIVERSE + N_POPULATION]
    test = perm[N_UNIVERSE + N_POPULATION:N_UNIVERSE + N_POPULATION + N_TEST]
    # LiRA's balanced keep matrix: each example is IN for exactly half of the models.
    keep = np.argsort(rng.uniform(size=(N_MODELS, N_UNIVERSE)), axis=0) < N_MODELS // 2

    def train(idx, seed):
        return train_model(RECIPE, digits.x[idx], digits.y[idx], num_classes=digits.num_classes,
                           seed=seed, accel=accel)

    models = [train(universe[keep[m]], seed=100 + m) for m in range(N_MODELS)]
    d_local = np.arange(N_UNIVERSE // 2)  # D = first half of U (in permuted order)
    forget_local = d_local[:N_FORGET]
    models.append(train(universe[d_local], seed=900))  # original: trained on D
    models.append(train(universe[d_local[N_FORGET:]], seed=901))  # retrained: D \ F

    everything = np.concatenate([universe, population, test])
    logits = compute_logits(models, digits.x[everything], ("identity",), accel)
    sig = SignalSet.from_logits(logits, digits.y[everything].numpy(), keep_logit_gaps=True)
    u_idx = np.arange(N_UNIVERSE)
    z_idx = np.arange(N_UNIVERSE, N_UNIVERSE + N_POPULATION)
    t_idx = np.arange(N_UNIVERSE + N_POPULATION, everything.size)
    return {"sig": sig, "keep": keep, "u": u_idx, "z": z_idx, "t": t_idx,
            "d": d_local, "forget": forget_local, "heldout": np.arange(N_UNIVERSE // 2, N_UNIVERSE),
            "original": N_MODELS, "retrained": N_MODELS + 1}


def _data(bank, target: int, refs, examples) -> AttackData:
    sig, keep = bank["sig"], bank["keep"]
    examples = np.asarray(examples)
    retain = np.setdiff1d(bank["d"], bank["forget"]) if target >= N_MODELS else bank["u"][keep[target]]
    return AttackData(
        target=_take(sig, target, bank["u"][examples]),
        references=_take(sig, refs, bank["u"][examples]),
        reference_in=keep[np.asarray(refs)][:, examples],
        population=_take(sig, target, bank["z"]),
        reference_population=_take(sig, refs, bank["z"]),
        calibration_members=_take(sig, target, bank["u"][retain]),
        calibration_nonmembers=_take(sig, target, bank["t"]),
    )


def _leave_one_out(bank, attack, n_refs=None):
    """Pool scores over every bank model attacked with (up to n_refs of) the others as references."""
    pos, neg = [], []
    for t in range(N_MODELS):
        refs = [m for m in range(N_MODELS) if m != t][:n_refs]
        s = attack.score(_data(bank, t, refs, bank["u"]))
        pos.append(s[bank["keep"][t]])
        neg.append(s[~bank["keep"][t]])
    return np.concatenate(pos), np.concatenate(neg)


def test_online_fixed_variance_lira_beats_loss_at_low_fpr(bank):
    lira_pos, lira_neg = _leave_one_out(bank, get_attack("lira", variance="fixed"))
    loss_pos, loss_neg = _leave_one_out(bank, get_attack("loss"))
    (lira,), (loss,) = tpr_at_fpr(lira_pos, lira_neg, fprs=(0.01,)), tpr_at_fpr(loss_pos, loss_neg, fprs=(0.01,))
    print(f"TPR@1%FPR: LiRA online fixed {lira.tpr:.4f} [{lira.tpr_low:.4f}, {lira.tpr_high:.4f}], "
          f"LOSS {loss.tpr:.4f} [{loss.tpr_low:.4f}, {loss.tpr_high:.4f}]; "
          f"AUC LiRA {roc_auc(lira_pos, lira_neg):.4f}, LOSS {roc_auc(loss_pos, loss_neg):.4f}")
    assert lira.tpr_low > loss.tpr_high  # the intervals do not even overlap
    assert roc_auc(lira_pos, lira_neg) > roc_auc(loss_pos, loss_neg)


@pytest.mark.parametrize("n_refs", [1, 2])
def test_rmia_beats_offline_lira_with_few_references(bank, n_refs):
    # gamma=1: with near-saturated MLP confidences, gamma=2 leaves most examples with Score = 0
    # (a tie no threshold can split); see "γ and ties" in the rmia module docstring.
    rmia_pos, rmia_neg = _leave_one_out(bank, get_attack("rmia-offline", gamma=1.0), n_refs)
    lira_pos, lira_neg = _leave_one_out(bank, get_attack("lira-offline"), n_refs)
    rmia_auc, lira_auc = roc_auc(rmia_pos, rmia_neg), roc_auc(lira_pos, lira_neg)
    print(f"{n_refs} reference(s): AUC RMIA offline {rmia_auc:.4f}, LiRA offline {lira_auc:.4f}")
    assert rmia_auc > lira_auc + 0.02


def test_rmia_auto_a_does_as_well_as_the_best_fixed_a(bank):
    # a is tuned on the references alone (each attacked with the others); the target is unseen.
    fixed = {a: roc_auc(*_leave_one_out(bank, get_attack("rmia-offline", gamma=1.0, a=a), 4))
             for a in (0.05, 0.3, 0.5, 1.0)}
    auto = roc_auc(*_leave_one_out(bank, get_attack("rmia-offline", gamma=1.0, a="auto"), 4))
    print(f"4 references: AUC RMIA offline a=auto {auto:.4f}, fixed a: {fixed}")
    assert auto >= max(fixed.values()) - 0.01
    assert auto >= min(fixed.values()) + 0.02


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_attack_separates_forget_on_original_not_retrained(bank, name):
    """Forget-vs-held-out AUC: the original (trained on F) above the retrained model (never saw F)."""
    examples = np.concatenate([bank["forget"], bank["heldout"]])
    refs = list(range(N_MODELS))
    attack = get_attack(name)
    aucs = []
    for target in (bank["original"], bank["retrained"]):
        s = attack.score(_data(bank, target, refs, examples))
        aucs.append(roc_auc(s[:N_FORGET], s[N_FORGET:]))
    original, retrained = aucs
    print(f"{name}: forget-vs-heldout AUC original {original:.3f}, retrained {retrained:.3f}")
    assert original > retrained
