"""Training: the membership signal the tool exists to measure, reproducibility, divergence."""

import pytest
import torch

from unlearn_audit.config import Config
from unlearn_audit.errors import TrainingDivergedError
from unlearn_audit.scenario import Scenario
from unlearn_audit.store import Store
from unlearn_audit.training import Recipe, accuracy, augment_batch, init_model, make_generator, train_model


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    return Scenario.from_config(Config(), store=Store(tmp_path_factory.mktemp("store")))


def _acc(model, scenario, idx):
    data = scenario.tensors(idx)
    return accuracy(model, data.x, data.y, scenario.accel)


def test_original_remembers_forget_set_retrained_does_not(scenario):
    """Original: forget accuracy above test accuracy. Retrained: forget accuracy close to test accuracy."""
    s = scenario.split
    gaps_orig, gaps_retr = [], []
    for original, retrained in zip(scenario.bank("original", 2).models, scenario.bank("retrain", 2).models):
        gaps_orig.append(_acc(original, scenario, s.forget) - _acc(original, scenario, s.test))
        gaps_retr.append(_acc(retrained, scenario, s.forget) - _acc(retrained, scenario, s.test))
    mean_orig, mean_retr = sum(gaps_orig) / 2, sum(gaps_retr) / 2
    assert mean_orig > 0.02  # trained on F: it fits F better than unseen data
    assert abs(mean_retr) < 0.03  # never saw F: F is just more unseen data
    assert mean_orig > mean_retr + 0.015


def test_training_is_reproducible(digits, accel):
    r = Recipe(epochs=2)
    a = train_model(r, digits.x[:300], digits.y[:300], num_classes=10, seed=5, accel=accel)
    b = train_model(r, digits.x[:300], digits.y[:300], num_classes=10, seed=5, accel=accel)
    c = train_model(r, digits.x[:300], digits.y[:300], num_classes=10, seed=6, accel=accel)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_diverged_loss_stops_with_clear_error_and_saves_nothing(tmp_path):
    scenario = Scenario.from_config(Config(), store=Store(tmp_path))
    scenario.recipe = scenario.recipe.replace(lr=1e12, momentum=0.0, epochs=3)
    with pytest.raises(TrainingDivergedError, match="diverged"):
        scenario.bank("original", 1)
    # no model was stored (only the bank's membership record, which a re-run completes)
    assert [e["kind"] for e in Store(tmp_path).entries()] == ["bank"]


def test_augmentation_keeps_shape_and_changes_pixels():
    x = torch.arange(2 * 1 * 4 * 4, dtype=torch.float32).reshape(2, 1, 4, 4)
    y = augment_batch(x, "flip-crop", make_generator(0), padding=1)
    assert y.shape == x.shape
    flipped = augment_batch(x, "flip", make_generator(1))
    for i in range(2):  # each image is either itself or its mirror
        assert torch.equal(flipped[i], x[i]) or torch.equal(flipped[i], x[i].flip(2))


@pytest.mark.parametrize("arch", ["mlp", "cnn", "resnet18"])
def test_zoo_architectures_forward(arch):
    from unlearn_audit.models import build_model

    shape = (3, 16, 16) if arch == "resnet18" else (1, 8, 8)
    model = build_model(arch, 7, shape)
    assert model(torch.randn(2, *shape)).shape == (2, 7)


def test_user_factory_architecture():
    from unlearn_audit.models import build_model

    model = build_model("tests.factories:tiny_linear", 4, (1, 8, 8))
    assert model(torch.randn(3, 1, 8, 8)).shape == (3, 4)


def test_airnet_whitening_layer_whitens_training_patches():
    """airnet's first convolution, set from data, maps 2x2 patches to (nearly) unit second moment."""
    g = torch.Generator().manual_seed(0)
    mix = torch.randn(48, 48, generator=g)  # correlated channels and pixels
    images = (torch.randn(2000, 48, generator=g) @ mix).reshape(2000, 3, 4, 4)
    model = init_model(Recipe(arch="airnet"), 10, (3, 4, 4), seed=0, x=images)
    w = model.whiten.weight.detach()
    assert w.shape == (24, 3, 2, 2) and not model.whiten.weight.requires_grad
    out = torch.nn.functional.conv2d(images, w[:12]).permute(0, 2, 3, 1).reshape(-1, 12)  # every patch
    moment = out.T @ out / out.shape[0]
    assert torch.allclose(moment, torch.eye(12), atol=0.02)
    assert torch.equal(w[12:], -w[:12])
    # the whitening is never trained: absent from the optimiser's parameters
    trained = {n for n, p in model.named_parameters() if p.requires_grad}
    assert "whiten.weight" not in trained and "whiten.bias" in trained


def test_airnet_whitening_depends_on_the_training_data(digits, accel):
    recipe = Recipe(arch="airnet", epochs=1, batch_size=32)
    a = train_model(recipe, digits.x[:64], digits.y[:64], num_classes=10, seed=0, accel=accel)
    b = train_model(recipe, digits.x[64:128], digits.y[64:128], num_classes=10, seed=0, accel=accel)
    assert not torch.allclose(a.whiten.weight, b.whiten.weight)


@pytest.mark.parametrize("bad_step, n_steps", [(0, 5), (7, 20), (60, 130)])
def test_optimize_stops_a_run_whose_loss_turns_nan(bad_step, n_steps):
    """Finiteness is checked every few steps (not every step), but a NaN is never missed."""
    from unlearn_audit.training import Accelerator, optimize

    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.ones(4, 2)

    def step_loss(step):  # one NaN loss that leaves the weights finite: only the check can see it
        if step == bad_step:
            return torch.tensor(float("nan"), requires_grad=True)
        return model(x).pow(2).mean()

    with pytest.raises(TrainingDivergedError, match="diverged"):
        optimize(model, step_loss, opt, n_steps, accel=Accelerator())
    fresh = torch.nn.Linear(2, 1)  # the same run without the NaN: no error
    optimize(fresh, lambda step: fresh(x).pow(2).mean(), torch.optim.SGD(fresh.parameters(), lr=0.1), n_steps,
             accel=Accelerator())


@pytest.mark.parametrize("name,options", [("sgd", {"momentum": 0.9, "nesterov": True, "weight_decay": 5e-4}),
                                          ("adam", {"weight_decay": 1e-3}), ("adamw", {"weight_decay": 1e-2})])
def test_make_optimizer_fused_step_matches_torch_reference_step(name, options):
    from unlearn_audit.training.loop import make_optimizer

    torch.manual_seed(0)
    params = [torch.randn(7, 5, requires_grad=True), torch.randn(5, requires_grad=True)]
    twins = [p.detach().clone().requires_grad_(True) for p in params]
    ours = make_optimizer(params, name, 0.1, **options)
    reference_cls = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[name]
    reference = reference_cls(twins, lr=0.1, foreach=False, **options)
    for _ in range(3):
        grads = [torch.randn_like(p) for p in params]
        for group, opt in ((params, ours), (twins, reference)):
            for p, g in zip(group, grads):
                p.grad = g.clone()
            opt.step()
    for p, t in zip(params, twins):
        torch.testing.assert_close(p, t, rtol=1e-5, atol=1e-6)


def test_integer_and_float_hyperparameters_are_one_recipe():
    """lr=1 and lr=1.0 train the same model, so they must share a fingerprint (and the store's models)."""
    assert Recipe(lr=1, weight_decay=0).fingerprint == Recipe(lr=1.0, weight_decay=0.0).fingerprint
    assert isinstance(Recipe(warmup_epochs=1).warmup_epochs, float)
