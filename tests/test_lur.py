"""LUR (the ReGUn code base's baseline): SNIP-style re-initialisation of the forget-salient weights
and the bilevel step that ascends the forget loss at the retain look-ahead weights."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad

from unlearn_audit.errors import ConfigError
from unlearn_audit.methods import TensorSet, UnlearningTask, get_method
from unlearn_audit.methods.lur import snip_reinit, weight_layers
from unlearn_audit.training import Accelerator


def test_snip_reinit_replaces_exactly_the_most_salient_weights():
    torch.manual_seed(0)
    layer = nn.Linear(3, 2)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, -2.0, 3.0], [0.5, 0.1, -4.0]]))
        layer.bias.copy_(torch.tensor([1.0, -1.0]))
    grads = {layer.weight: torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]), layer.bias: torch.tensor([5.0, 0.0])}
    before = copy.deepcopy(layer)
    # saliencies: weights 1, 2, 3, 0.5, 0.1, 4; biases 5, 0 -> the top 3 of 8 are 3, 4 and the first bias
    changed = snip_reinit(layer, [layer], grads, sparsity=5 / 8, seed=0)
    assert changed == 3
    salient = torch.tensor([[False, False, True], [False, False, True]])
    assert torch.equal(layer.weight[~salient], before.weight[~salient])
    assert not torch.equal(layer.weight[salient], before.weight[salient])
    assert layer.weight[salient].abs().max() <= 1 / 3 ** 0.5  # PyTorch's default init bound for fan-in 3
    assert layer.bias.tolist() == [0.0, -1.0]


def _tiny_task(n_forget=12, n_retain=40):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n_forget + n_retain, 5, generator=g)
    y = torch.randint(0, 3, (n_forget + n_retain,), generator=g)
    return UnlearningTask(forget=TensorSet(x[:n_forget], y[:n_forget]), retain=TensorSet(x[n_forget:], y[n_forget:]),
                          num_classes=3, accel=Accelerator())


def _one_step_reference(model, task, lr, alpha, wr, wf):
    """θ − lr·∇[λ_r L_r(θ) − λ_f L_f(θ − α∇L_r(θ))], written with torch.func (whole sets are one batch)."""
    params = {n: p.detach() for n, p in model.named_parameters()}

    def retain_loss(p):
        return F.cross_entropy(functional_call(model, p, (task.retain.x,)), task.retain.y)

    def objective(p):
        g = grad(retain_loss)(p)
        ahead = {n: p[n] - alpha * g[n] for n in p}
        forget = F.cross_entropy(functional_call(model, ahead, (task.forget.x,)), task.forget.y)
        return wr * retain_loss(p) - wf * forget

    g = grad(objective)(params)
    return {n: params[n] - lr * g[n] for n in params}


@pytest.mark.parametrize("alpha", [0.0, 0.5])
def test_one_lur_step_is_the_bilevel_gradient_step(alpha):
    task = _tiny_task()
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3))
    # one epoch of one step (both sets fit in one batch); SGD's first momentum step is a plain step
    lur = get_method("lur", alpha=alpha, sparsity=0.0, epochs=1, lr=0.1, forget_weight=0.3, retain_weight=0.7)
    out = lur.unlearn(model, task)
    expected = _one_step_reference(model, task, 0.1, alpha, 0.7, 0.3)
    for n, p in out.named_parameters():
        assert torch.allclose(p, expected[n], atol=1e-6), n
    if alpha:
        first_order = _one_step_reference(model, task, 0.1, 0.0, 0.7, 0.3)
        assert any(not torch.allclose(p, first_order[n], atol=1e-5) for n, p in out.named_parameters())


def test_the_digits_run_reinitialises_the_top_three_percent(method_run):
    run = method_run("lur", "random")  # the contract's run (row "lur" in tests/method_settings.py)
    eligible = sum(p.numel() for m in weight_layers(run.original) for p in m.parameters(recurse=False))
    assert run.method.details()["reinitialised_weights"] == pytest.approx(0.03 * eligible, abs=2)


def test_prune_last_restricts_the_reinitialisation_to_the_head(random_scenario):
    task, model = random_scenario["task"], random_scenario["model"]
    lur = get_method("lur", prune_last=1, epochs=1e-9, lr=1e-12)  # one negligible step after pruning
    out = lur.unlearn(model, task)
    changed = [n for (n, p), q in zip(model.named_parameters(), out.parameters()) if not torch.allclose(p, q)]
    assert changed and all(n.startswith("head") for n in changed)


def test_too_many_layers_to_prune_is_refused(random_scenario):
    with pytest.raises(ConfigError, match="choose 1 <= k <= 3"):
        get_method("lur", prune_last=9).unlearn(random_scenario["model"], random_scenario["task"])
