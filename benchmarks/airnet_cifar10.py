"""airnet on CIFAR-10 (a GPU benchmark): accuracy, seconds per model, models per hour for ensembles
of 16 and 64 against sequential training, and the achieved fraction of the GPU's bf16 peak.

Trains on the 50,000 official training images (data resident on the GPU, flip + translate
augmentation on the device, bf16 autocast) and tests on the 10,000 test images; accuracy is
reported plain and with mirror test-time augmentation. Target: >= 93 % (mean over the ensemble).
Sequential time is measured on ``--sequential`` models and extrapolated per model.

    .venv/bin/python benchmarks/airnet_cifar10.py --download            # GPU, CIFAR-10
    .venv/bin/python benchmarks/airnet_cifar10.py --synthetic           # GPU, CIFAR-10-sized random data
    .venv/bin/python benchmarks/airnet_cifar10.py --quick               # CPU smoke run, random data

``--synthetic`` measures speed without the dataset (50,000 + 10,000 random 3x32x32 images: the
same shapes, so the same time and FLOP/s; the accuracy it prints is chance).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from unlearn_audit.models.zoo import resolve_device
from unlearn_audit.signals import compute_logits
from unlearn_audit.training import Accelerator, Recipe, init_model, train_model
from unlearn_audit.training.ensemble import train_ensemble

# Dense bf16 tensor-core peaks (FLOP/s) by device name.
BF16_PEAK = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L4": 121e12, "A10": 125e12, "4090": 165e12}


def airnet_recipe(args) -> Recipe:
    return Recipe(arch="airnet", epochs=args.epochs, batch_size=args.batch, optimizer="sgd", lr=args.lr,
                  momentum=0.85, nesterov=True, weight_decay=args.wd, schedule="onecycle", label_smoothing=0.2,
                  augment="flip-crop", crop_padding=2)


def load_data(args, device):
    if args.quick or args.synthetic:
        n_train, n_test = (args.quick_n - 64, 64) if args.quick else (50_000, 10_000)
        g = torch.Generator().manual_seed(0)
        x = torch.randn(n_train + n_test, 3, 32, 32, generator=g)
        y = torch.randint(0, 10, (n_train + n_test,), generator=g)
        return x[:n_train], y[:n_train], x[n_train:].to(device), y[n_train:].to(device)
    from unlearn_audit.data import load_dataset

    ds = load_dataset("cifar10", args.data_root, args.download)
    test = torch.as_tensor(ds.test_indices)
    train = torch.as_tensor(np.setdiff1d(np.arange(len(ds)), ds.test_indices))
    return ds.x[train], ds.y[train], ds.x[test].to(device), ds.y[test].to(device)


def train_flops(recipe: Recipe, n_train: int, input_shape) -> float:
    """Training FLOPs of one model: 3x the forward FLOPs (forward + backward) per example seen."""
    model = init_model(recipe, 10, input_shape, 0)
    with FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, *input_shape))
    return 3.0 * counter.get_total_flops() * recipe.epochs * (n_train // recipe.batch_size) * recipe.batch_size


def evaluate(models, x, y, accel) -> tuple[float, float]:
    logits = compute_logits(models, x, ("identity", "mirror"), accel)  # (M, N, 2, C)
    labels = y.cpu().numpy()
    plain = (logits[:, :, 0].argmax(-1) == labels).mean()
    tta = (logits.mean(2).argmax(-1) == labels).mean()
    return float(plain), float(tta)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="CPU smoke run on random data")
    ap.add_argument("--synthetic", action="store_true",
                    help="random data of CIFAR-10's size: speed figures without the dataset")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--download", action="store_true")
    ap.add_argument("--counts", type=int, nargs="+", default=[16, 64], help="ensemble sizes to time")
    ap.add_argument("--sequential", type=int, default=4, help="models trained one by one for the baseline")
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--lr", type=float, default=0.4)
    ap.add_argument("--wd", type=float, default=5e-4)
    ap.add_argument("--peak-tflops", type=float, default=None, help="bf16 peak of the device (TFLOP/s)")
    ap.add_argument("--quick-n", type=int, default=320)
    args = ap.parse_args()
    if args.quick:
        args.device, args.counts, args.sequential, args.epochs, args.batch = "cpu", [2], 1, 1, 64
    device = resolve_device(args.device)
    accel = Accelerator(device=device, amp=True)
    recipe = airnet_recipe(args)
    x, y, tx, ty = load_data(args, device)
    x_dev, y_dev = x.to(device), y.to(device)
    flops = train_flops(recipe, len(x), tuple(x.shape[1:]))
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    peak = args.peak_tflops * 1e12 if args.peak_tflops else next((v for k, v in BF16_PEAK.items() if k in name), None)
    print(f"airnet, {len(x)} training images, recipe: epochs={recipe.epochs} batch={recipe.batch_size} "
          f"lr={recipe.lr} on {name}; {flops / 1e12:.2f} TFLOP per model")

    def report(label, seconds_per_model, models):
        plain, tta = evaluate(models, tx, ty, accel)
        frac = f", {100 * flops / seconds_per_model / peak:.1f} % of bf16 peak" if peak else ""
        print(f"  {label:22s} {seconds_per_model:7.2f} s/model  {3600 / seconds_per_model:8.0f} models/hour  "
              f"acc {100 * plain:.2f} % (mirror TTA {100 * tta:.2f} %){frac}")
        return seconds_per_model

    seeds = list(range(max(args.counts + [args.sequential])))
    sync(device)
    start = time.perf_counter()
    seq = [train_model(recipe, x_dev, y_dev, num_classes=10, seed=s, accel=accel) for s in seeds[:args.sequential]]
    sync(device)
    t_seq = report(f"sequential ({args.sequential})", (time.perf_counter() - start) / args.sequential, seq)
    everything = np.arange(len(x))
    for count in args.counts:
        sync(device)
        start = time.perf_counter()
        models = train_ensemble(recipe, x_dev, y_dev, [everything] * count, seeds[:count], num_classes=10, accel=accel)
        sync(device)
        t_ens = report(f"ensemble of {count}", (time.perf_counter() - start) / count, models)
        print(f"  {'':22s} ensemble of {count} vs sequential: {t_seq / t_ens:.2f}x models/hour")
        del models
        if device.type == "cuda":
            torch.cuda.empty_cache()


if __name__ == "__main__":
    from _results import recorded

    with recorded(__file__):
        main()
