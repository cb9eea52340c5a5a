"""Attacks on synthetic signals with known answers, and their input validation. What every attack
must do is checked over the whole registry in ``tests/test_attack_contracts.py`` (its row in
``tests/attack_settings.py`` names the known-answer test here that pins it)."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.svm import SVC

from unlearn_audit.attacks import REGISTRY, AttackData, get_attack
from unlearn_audit.attacks.gaussian import FIXED_VARIANCE_BELOW, fit_gaussian, resolve_variance
from unlearn_audit.attacks.lira import LiRA
from unlearn_audit.attacks.logreg import simple_mia
from unlearn_audit.attacks.rmia import A_GRID, RMIA, OfflineRMIA, pairwise_scores, sorted_scores
from unlearn_audit.attacks.svc import mia_efficacy
from unlearn_audit.attacks.ulira import ULiRA, balanced_accuracy, per_example_balanced_accuracy
from unlearn_audit.errors import ConfigError
from unlearn_audit.stats import roc_auc

from tests.attack_settings import signals


def gaussian_bank(rng, n=4000, m=128, shift=1.0, spread=3.0, q=1):
    """Per-example Gaussian φ: OUT ~ N(μ_i, 1), IN ~ N(μ_i + shift, 1), μ_i ~ N(0, spread²)."""
    mu = rng.normal(0, spread, size=(n, 1))
    keep = np.argsort(rng.uniform(size=(m, n)), axis=0) < m // 2
    ref_phi = mu + shift * keep[..., None] + rng.normal(size=(m, n, q))
    member = rng.uniform(size=n) < 0.5
    target_phi = mu + shift * member[:, None] + rng.normal(size=(n, q))
    data = AttackData(target=signals(target_phi), references=signals(ref_phi), reference_in=keep)
    return data, member


# ---------------------------------------------------------------------------- LiRA


@pytest.mark.parametrize("name,variance", [("lira", "per-example"), ("lira", "fixed"),
                                           ("lira-offline", "fixed"), ("ulira", "auto")])
def test_lira_recovers_the_exact_gaussian_roc(name, variance):
    """IN/OUT per-example Gaussians shifted by μ: the optimal test has AUC Φ(μ/√2); LiRA recovers it."""
    rng = np.random.default_rng(1)
    shift = 1.0
    data, member = gaussian_bank(rng, shift=shift)
    s = get_attack(name, variance=variance).score(data)
    exact = norm.cdf(shift / np.sqrt(2))  # 0.7602
    assert roc_auc(s[member], s[~member]) == pytest.approx(exact, abs=0.02)
    # A global threshold on φ cannot see past the per-example offsets (spread 3 ≫ shift 1).
    global_auc = roc_auc(data.target.phi[member, 0], data.target.phi[~member, 0])
    assert global_auc < exact - 0.1


def test_lira_averages_the_log_ratio_over_queries():
    rng = np.random.default_rng(2)
    data, _ = gaussian_bank(rng, n=200, m=16, q=3)
    attack = LiRA(variance="fixed")
    fit_in, fit_out = attack.fit(data.references.phi, data.reference_in)
    per_query = fit_in.logpdf(data.target.phi) - fit_out.logpdf(data.target.phi)
    np.testing.assert_allclose(attack.score(data), per_query.mean(axis=1))


def test_offline_lira_is_the_one_sided_test():
    rng = np.random.default_rng(18)
    data, _ = gaussian_bank(rng, n=100, m=8)
    attack = get_attack("lira-offline", variance="fixed")
    _, fit_out = attack.fit(data.references.phi, data.reference_in)
    phi = data.target.phi[:, 0]
    # One query: −log Pr[Z > φ], a monotone transform of the paper's 1 − Pr[Z > φ].
    np.testing.assert_allclose(attack.score(data), -norm.logsf(phi, fit_out.mu[:, 0], fit_out.sd[:, 0]))
    assert np.all(np.diff(attack.score(data)[np.argsort(phi - fit_out.mu[:, 0])]) > 0)


def test_fixed_variance_pools_centred_residuals():
    rng = np.random.default_rng(3)
    stats = rng.normal(0, 5, size=(1, 300, 1)) + rng.normal(0, 1, size=(20, 300, 1))
    fit = fit_gaussian(stats, np.ones((20, 300), bool), center="mean", variance="fixed")
    assert fit.sd[0, 0] == pytest.approx(1.0, abs=0.05)  # not ≈ 5.1, the uncentred std
    assert np.all(fit.sd == fit.sd[0, 0])


def test_auto_variance_is_fixed_below_64_references():
    assert resolve_variance("auto", FIXED_VARIANCE_BELOW - 1) == "fixed"
    assert resolve_variance("auto", FIXED_VARIANCE_BELOW) == "per-example"
    assert resolve_variance("per-example", 2) == "per-example"


def test_examples_without_in_or_out_references_fall_back_to_the_global_fit():
    rng = np.random.default_rng(4)
    data, _ = gaussian_bank(rng, n=50, m=4)
    keep = data.reference_in.copy()
    keep[:, 0] = True  # example 0: no OUT reference
    keep[:, 1] = False  # example 1: no IN reference
    data = AttackData(target=data.target, references=data.references, reference_in=keep)
    for name in ("lira", "lira-offline"):
        for variance in ("per-example", "fixed"):
            assert np.isfinite(get_attack(name, variance=variance).score(data)).all()
    fit_in, fit_out = LiRA(variance="per-example").fit(data.references.phi, keep)
    assert fit_out.count[0] == 0 and fit_in.count[1] == 0
    assert fit_out.mu[0, 0] == pytest.approx(np.median(data.references.phi[~keep]))


def test_identical_reference_statistics_do_not_give_nan():
    phi = np.ones((4, 10, 1))
    keep = np.array([[True] * 10, [False] * 10] * 2)
    data = AttackData(target=signals(np.full((10, 1), 1.5)), references=signals(phi), reference_in=keep)
    assert np.isfinite(get_attack("lira").score(data)).all()


def test_leave_one_out_scores_each_reference_with_the_others():
    rng = np.random.default_rng(5)
    data, _ = gaussian_bank(rng, n=300, m=16, shift=2.0)
    loo = LiRA().score_references(data)
    assert loo.shape == data.reference_in.shape
    assert roc_auc(loo[data.reference_in], loo[~data.reference_in]) > 0.8


# ---------------------------------------------------------------------------- U-LiRA


def test_ulira_is_lira_with_unlearning_semantics():
    assert issubclass(ULiRA, LiRA) and ULiRA.name == "ulira"
    rng = np.random.default_rng(6)
    data, _ = gaussian_bank(rng, n=200, m=16)
    np.testing.assert_array_equal(ULiRA().score(data), LiRA().score(data))


@pytest.mark.parametrize("residual,lo,hi", [(0.0, 0.45, 0.55), (2.0, 0.75, 1.0)])
def test_ulira_balanced_accuracy_is_half_for_perfect_unlearning(residual, lo, hi):
    """Unlearned shadows keep a residual shift of φ; with none the test is at chance."""
    rng = np.random.default_rng(7)
    data, _ = gaussian_bank(rng, n=600, m=32, shift=residual)
    loo = ULiRA().score_references(data)
    per_example = per_example_balanced_accuracy(loo, data.reference_in)
    overall = balanced_accuracy(loo[data.reference_in], loo[~data.reference_in])
    assert lo <= overall <= hi
    assert per_example.shape == (600,) and np.nanmean(per_example) == pytest.approx(overall, abs=0.03)


def test_balanced_accuracy_rejects_empty_or_nan():
    with pytest.raises(ConfigError):
        balanced_accuracy([], [0.1])
    with pytest.raises(ConfigError):
        balanced_accuracy([np.nan], [0.1])


# ---------------------------------------------------------------------------- RMIA


def rmia_data(rng, n=300, z=500, m=2):
    keep = rng.uniform(size=(m, n)) < 0.5
    mu = rng.normal(2, 2, size=(n, 1))
    ref = mu + 1.5 * keep[..., None] + rng.normal(size=(m, n, 1))
    member = rng.uniform(size=n) < 0.5
    target = mu + 1.5 * member[:, None] + rng.normal(size=(n, 1))
    mz = rng.normal(2, 2, size=(z, 1))
    return AttackData(target=signals(target), references=signals(ref), reference_in=keep,
                      population=signals(mz + rng.normal(size=(z, 1))),
                      reference_population=signals(mz + rng.normal(size=(m, z, 1)))), member


def test_rmia_sorted_equals_pairwise_on_random_data():
    rng = np.random.default_rng(8)
    for gamma in (1.0, 2.0, 3.7):
        r_x, r_z = rng.normal(size=3000), rng.normal(size=2000)
        np.testing.assert_array_equal(sorted_scores(r_x, r_z, gamma), pairwise_scores(r_x, r_z, gamma, chunk=256))
    # Ties (LR exactly γ counts as ≥ γ) are handled the same way.
    r_x, r_z = rng.integers(0, 5, 500).astype(float), rng.integers(0, 5, 400).astype(float)
    np.testing.assert_array_equal(sorted_scores(r_x, r_z, 1.0), pairwise_scores(r_x, r_z, 1.0))


@pytest.mark.parametrize("cls", [RMIA, OfflineRMIA])
def test_rmia_score_matches_the_paper_formula(cls):
    """Score(x) = mean_z 1[(p(x|θ)/Pr(x)) / (p(z|θ)/Pr(z)) ≥ γ], computed in probability space."""
    rng = np.random.default_rng(9)
    data, _ = rmia_data(rng, n=60, z=80, m=4)
    keep = data.reference_in.copy()
    keep[:, 0] = [True, True, False, False]  # make sure example 0 has both groups
    data = AttackData(**{**data.__dict__, "reference_in": keep})
    attack = cls(gamma=2.0, a=0.3, temperature=2.0)

    def p(s):  # tempered true-vs-rest probability σ(φ/T), T = 2
        return 1 / (1 + np.exp(-s.phi[..., 0] / 2.0))

    px, pref, pz, prefz = p(data.target), p(data.references), p(data.population), p(data.reference_population)
    out_x = np.array([pref[~keep[:, i], i].mean() if (~keep[:, i]).any() else np.nan for i in range(60)])
    in_x = np.array([pref[keep[:, i], i].mean() if keep[:, i].any() else np.nan for i in range(60)])
    a = 0.3
    out_x = np.where(np.isnan(out_x), np.clip((in_x - 1 + a) / a, 0, 1), out_x)
    if cls.online:
        in_x = np.where(np.isnan(in_x), a * out_x + 1 - a, in_x)
        pr_x, pr_z = 0.5 * (in_x + out_x), prefz.mean(0)
    else:
        pr_x, pr_z = 0.5 * ((1 + a) * out_x + 1 - a), 0.5 * ((1 + a) * prefz.mean(0) + 1 - a)
    lr = (px / pr_x)[:, None] / (pz / pr_z)[None, :]
    np.testing.assert_allclose(attack.score(data), (lr >= 2.0).mean(axis=1))


def test_rmia_works_with_one_reference_and_separates_members():
    rng = np.random.default_rng(10)
    data, member = rmia_data(rng, n=2000, z=2000, m=1)
    for name in ("rmia", "rmia-offline"):
        s = get_attack(name, gamma=1.0).score(data)
        assert np.isfinite(s).all() and roc_auc(s[member], s[~member]) > 0.6


def test_rmia_temperature_one_is_the_true_class_probability():
    phi = np.linspace(-30, 30, 13)[:, None]
    np.testing.assert_allclose(np.exp(signals(phi).tempered_log_prob(1.0)), signals(phi).prob, rtol=1e-6)


def test_rmia_auto_a_needs_references_with_mixed_membership():
    rng = np.random.default_rng(11)
    one, _ = rmia_data(rng, n=50, z=40, m=1)
    with pytest.raises(ConfigError, match="at least 2 reference models"):
        get_attack("rmia-offline", a="auto").score(one)
    data, _ = rmia_data(rng, n=50, z=40, m=3)
    all_out = AttackData(**{**data.__dict__, "reference_in": np.zeros((3, 50), dtype=bool)})
    with pytest.raises(ConfigError, match="0 with mixed membership"):
        get_attack("rmia-offline", a="auto").score(all_out)
    attack = get_attack("rmia-offline", a="auto")
    attack.score(data)
    assert attack.settings()["a"] == "auto" and attack.settings()["a_selected"] in A_GRID


# ---------------------------------------------------------------------------- population attacks


def test_threshold_attacks_use_the_right_signal_and_sign():
    phi = np.array([[4.0, 6.0], [-1.0, 0.0], [2.0, 2.0]])
    data = AttackData(target=signals(phi))
    sig = data.target
    np.testing.assert_allclose(get_attack("confidence").score(data), sig.prob.mean(1))
    np.testing.assert_allclose(get_attack("entropy").score(data), -sig.entropy.mean(1))
    np.testing.assert_allclose(get_attack("modified-entropy").score(data), -sig.modified_entropy.mean(1))
    np.testing.assert_allclose(get_attack("loss").score(data), -sig.loss.mean(1))
    # Confident and correct ranks above wrong.
    assert np.argmax(get_attack("modified-entropy").score(data)) == 0


def calibrated_data(rng, n=400):
    members = signals(rng.normal(4, 1, size=(n, 1)))
    nonmembers = signals(rng.normal(1, 1, size=(n, 1)))
    member = rng.uniform(size=n) < 0.5
    target = signals(np.where(member[:, None], rng.normal(4, 1, (n, 1)), rng.normal(1, 1, (n, 1))))
    return AttackData(target=target, calibration_members=members, calibration_nonmembers=nonmembers), member


@pytest.mark.parametrize("name", ["logreg-loss", "svc-confidence"])
def test_calibrated_attacks_separate_members(name):
    data, member = calibrated_data(np.random.default_rng(11))
    s = get_attack(name).score(data)
    assert roc_auc(s[member], s[~member]) > 0.9


def test_mia_efficacy_is_the_published_svc_number():
    rng = np.random.default_rng(12)
    retain = 1 / (1 + np.exp(-rng.normal(5, 1, 500)))
    test = 1 / (1 + np.exp(-rng.normal(1, 1.5, 200)))
    forget = 1 / (1 + np.exp(-rng.normal(3, 2, 100)))
    clf = SVC(C=3, gamma="auto", kernel="rbf").fit(
        np.concatenate([retain[:200], test])[:, None], np.r_[np.ones(200), np.zeros(200)])
    expected = 100 * (1 - clf.predict(forget[:, None]).mean())
    assert mia_efficacy(retain, test, forget) == pytest.approx(expected)
    assert mia_efficacy(retain, test, retain[200:300]) < 20  # forget looks like training data
    assert mia_efficacy(retain, test, test) > 60  # forget looks like unseen data


def test_simple_mia_is_chance_for_identical_losses():
    rng = np.random.default_rng(13)
    assert simple_mia(rng.exponential(size=300), rng.exponential(size=500)) == pytest.approx(0.5, abs=0.08)
    assert simple_mia(rng.exponential(0.05, 300), rng.exponential(1.0, 500)) > 0.8


@pytest.mark.parametrize("classifier", ["mlp", "gbdt"])
def test_shadow_classifier_learns_from_reference_membership(classifier):
    rng = np.random.default_rng(14)
    keep = rng.uniform(size=(8, 400)) < 0.5
    ref = rng.normal(1, 1, size=(8, 400, 1)) + 2 * keep[..., None]
    member = rng.uniform(size=400) < 0.5
    target = rng.normal(1, 1, size=(400, 1)) + 2 * member[:, None]
    data = AttackData(target=signals(target), references=signals(ref), reference_in=keep)
    s = get_attack("shadow", classifier=classifier).score(data)
    assert roc_auc(s[member], s[~member]) > 0.8


# ---------------------------------------------------------------------------- validation and metadata


def test_fewer_references_than_required_is_a_clear_error():
    rng = np.random.default_rng(15)
    data, _ = gaussian_bank(rng, n=20, m=1)
    with pytest.raises(ConfigError, match="at least 2 reference models"):
        get_attack("lira").score(data)


def test_online_lira_without_in_references_says_use_offline():
    rng = np.random.default_rng(16)
    data, _ = gaussian_bank(rng, n=20, m=4)
    data = AttackData(target=data.target, references=data.references, reference_in=np.zeros((4, 20), bool))
    with pytest.raises(ConfigError, match="offline"):
        get_attack("lira").score(data)
    assert np.isfinite(get_attack("lira-offline").score(data)).all()


def test_bad_inputs_raise_clear_errors():
    rng = np.random.default_rng(17)
    data, _ = gaussian_bank(rng, n=20, m=4)
    with pytest.raises(ConfigError, match="needs reference models. signals"):
        get_attack("lira").score(AttackData(target=data.target))
    with pytest.raises(ConfigError, match="reference_in must have shape"):
        get_attack("lira").score(AttackData(target=data.target, references=data.references,
                                            reference_in=data.reference_in[:, :10]))
    with pytest.raises(ConfigError, match="cover"):
        get_attack("lira").score(AttackData(target=data.target.take(np.arange(10)), references=data.references,
                                            reference_in=data.reference_in))
    bad = signals(np.where(np.arange(20)[:, None] == 3, np.nan, 1.0))
    with pytest.raises(ConfigError, match="NaN"):
        get_attack("loss").score(AttackData(target=bad))
    with pytest.raises(ConfigError, match="NaN"):
        get_attack("lira").score(AttackData(target=data.target, references=signals(
            np.full((4, 20, 1), np.nan)), reference_in=data.reference_in))
    rdata, _ = rmia_data(rng, n=20, z=10, m=2)
    with pytest.raises(ConfigError, match="reference_population"):
        get_attack("rmia").score(AttackData(**{**rdata.__dict__, "reference_population": signals(
            np.zeros((3, 10, 1)))}))
    with pytest.raises(ConfigError, match="unknown attack"):
        get_attack("nope")
    with pytest.raises(ConfigError, match="has no parameter 'gamma'; its parameters are: center, variance"):
        get_attack("lira", gamma=2)
    with pytest.raises(ConfigError):
        get_attack("lira", variance="sometimes")


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_attack_describes_itself_and_cites_its_paper(name):
    cls = REGISTRY[name]
    info = cls.describe()
    for key in ("name", "title", "citation", "threat_model", "min_references", "requires", "defaults"):
        assert info[key] is not None and info[key] != ""
    assert info["name"] == name
    module = importlib.import_module(cls.__module__)
    assert any(str(year) in module.__doc__ for year in range(2015, 2026)), "module docstring cites a paper"
    assert get_attack(name).settings().keys() == info["defaults"].keys()


def test_tempered_probability_is_exact_with_logit_gaps():
    from unlearn_audit.signals import SignalSet

    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, size=(5, 7, 2, 4))  # models, examples, queries, classes
    labels = rng.integers(0, 4, 7)
    exact = SignalSet.from_logits(logits, labels, keep_logit_gaps=True)
    reduced = SignalSet.from_logits(logits, labels)
    for t in (1.0, 2.0, 0.5):
        z = logits / t
        direct = z - np.log(np.exp(z).sum(-1, keepdims=True))
        expected = np.take_along_axis(direct, np.broadcast_to(labels[:, None, None], (5, 7, 2, 1)), -1)[..., 0]
        np.testing.assert_allclose(exact.tempered_log_prob(t), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(reduced.tempered_log_prob(1.0), np.log(reduced.prob), rtol=1e-4, atol=1e-5)
    # the gaps follow example selection and stacking like every other field
    assert exact.take([0, 3]).logit_gaps.shape == (5, 2, 2, 4)
    assert exact.take(1, axis=0).logit_gaps.shape == (7, 2, 4) and exact.take(1, axis=0).phi.shape == (7, 2)
    assert SignalSet.stack([exact, exact]).logit_gaps.shape == (2, 5, 7, 2, 4)
    assert SignalSet.stack([exact, reduced]).logit_gaps is None


def test_leave_one_out_scores_are_unbiased_between_identical_groups():
    """U-LiRA on two identically distributed groups of 3: balanced accuracy 0.5 on average
    (a plain leave-one-out scores each model against a smaller fit of its own group: ≈ 0.58)."""
    from unlearn_audit.attacks.ulira import per_example_balanced_accuracy

    rng = np.random.default_rng(0)
    accs = []
    for _ in range(10):
        phi = rng.normal(0, 3, (1, 200, 1)) + rng.normal(0, 1, (6, 200, 1)) * rng.uniform(0.5, 3, (1, 200, 1))
        keep = np.zeros((6, 200), bool)
        keep[:3] = True
        data = AttackData(target=signals(phi[0]), references=signals(phi), reference_in=keep)
        accs.append(np.nanmean(per_example_balanced_accuracy(get_attack("ulira").score_references(data), keep)))
    assert abs(np.mean(accs) - 0.5) < 0.03


def test_leave_one_out_uses_the_banks_variance_mode(monkeypatch):
    """At exactly FIXED_VARIANCE_BELOW references a target gets per-example σ; the leave-one-out
    scores of the same bank must too, not switch to fixed σ because each fit has one model fewer."""
    import unlearn_audit.attacks.lira as lira_module

    data, _ = gaussian_bank(np.random.default_rng(0), n=6, m=FIXED_VARIANCE_BELOW)
    modes = []

    def recording(*args, variance, **kwargs):
        modes.append(variance)
        return fit_gaussian(*args, variance=variance, **kwargs)

    monkeypatch.setattr(lira_module, "fit_gaussian", recording)
    attack = LiRA()
    attack.score(data)
    attack.score_references(data)
    assert set(modes) == {"per-example"}
