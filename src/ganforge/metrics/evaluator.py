"""Domain evaluators: small classifiers that ganforge trains itself, to measure GANs on a dataset.

Inception-v3 features say little about 28x28 digits, so FID/KID on MNIST-like data use a
classifier trained on the dataset itself (the role LeNet plays in many GAN papers): its
penultimate features serve FID/KID/precision-recall, its logits IS and label accuracy.

``ganforge train-evaluator --dataset mnist`` (:func:`train_evaluator`) saves ``NAME.safetensors``
(weights) + ``NAME.json`` (architecture, data, held-out accuracy, SHA-256 of the weights); the
file format and the lookup by name live in :mod:`ganforge.metrics.extractors`.
:class:`DomainEvaluator` loads them back, verifying the checksum. Nothing is ever unpickled.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from typing import Any, Callable, Optional

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.errors import CheckpointError, ConfigError, GanforgeError
from ganforge.metrics.base import FeatureExtractor
from ganforge.metrics.extractors import evaluator_path, read_evaluator, save_evaluator

# Images per forward pass at inference. Measured on a 2-core CPU, 250 is ~1.5x faster than
# 1000: the activations of a smaller batch stay in cache.
INFER_BATCH = 250
LUMA = (0.299, 0.587, 0.114)  # RGB -> gray weights, the ones ganforge.data uses


# --------------------------------------------------------------------------------------------
# The network
# --------------------------------------------------------------------------------------------

class LeNetEvaluator(nn.Module):
    """conv(w)-pool-conv(2w)-pool-conv(4w)-FC(F)-FC(K), 3x3 convs with BatchNorm and ReLU.

    One conv per resolution: on a 2-core CPU a conv32-conv32-pool-conv64-conv64 stack costs
    ~3x more per image, and 10k images must embed in seconds.

    Args:
        in_channels / image_size: C and (H, W) of the inputs (H, W >= 8).
        n_classes: K, the size of the logits.
        width: w, channels of the first conv.
        feature_dim: F, the size of the penultimate (feature) layer.
        dropout: dropout before the last layer (training only).
    """

    def __init__(self, in_channels: int, image_size: list[int], n_classes: int, width: int = 24,
                 feature_dim: int = 128, dropout: float = 0.3) -> None:
        super().__init__()
        if min(image_size) < 8:
            raise ConfigError(f"evaluator images must be at least 8x8, got {image_size}")

        def conv(cin: int, cout: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                    nn.ReLU(inplace=True)]

        # 28 px -> 7x7 after two poolings; larger images are pooled to 7x7 so the FC stays small.
        grid = (min(7, image_size[0] // 4), min(7, image_size[1] // 4))
        self.body = nn.Sequential(
            *conv(in_channels, width), nn.MaxPool2d(2),
            *conv(width, 2 * width), nn.MaxPool2d(2),
            *conv(2 * width, 4 * width), nn.AdaptiveAvgPool2d(grid), nn.Flatten(),
        )
        self.embed = nn.Sequential(nn.Linear(4 * width * grid[0] * grid[1], feature_dim,
                                             bias=False), nn.BatchNorm1d(feature_dim))
        self.head = nn.Sequential(nn.ReLU(), nn.Dropout(dropout), nn.Linear(feature_dim, n_classes))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Args: x (N, C, H, W) float in [-1, 1].

        Returns:
            features (N, F): the penultimate layer *before* its ReLU; pre-activations are
                roughly Gaussian and have no dead all-zero units, which suits FID's Gaussian fit.
            logits (N, K).
        """
        features = self.embed(self.body(x))
        return features, self.head(features)


ARCHS: dict[str, type[nn.Module]] = {"lenet": LeNetEvaluator}


# --------------------------------------------------------------------------------------------
# Data: splits and augmentation
# --------------------------------------------------------------------------------------------

def stratified_split(y: torch.Tensor, fraction: float, seed: int
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Deterministic stratified split of (N,) labels ``y``: ``round(fraction * n_k)`` of each
    class k is held out. Returns sorted, disjoint train and held-out index tensors."""
    gen = torch.Generator().manual_seed(seed)
    train, held = [], []
    for k in torch.unique(y).tolist():
        idx = torch.nonzero(y == k).flatten()
        idx = idx[torch.randperm(len(idx), generator=gen)]
        n_held = int(round(fraction * len(idx)))
        held.append(idx[:n_held])
        train.append(idx[n_held:])
    return torch.cat(train).sort().values, torch.cat(held).sort().values


def random_affine(x: torch.Tensor, gen: torch.Generator, degrees: float = 10.0,
                  shift: float = 0.1, scale: float = 0.1) -> torch.Tensor:
    """Random small rotation, shift and zoom of each image of a batch, all at once on its device.

    Args:
        x: (N, C, H, W) float images; gen: a generator on ``x.device``.
        degrees / shift / scale: largest rotation, shift (fraction of the side) and zoom.

    Returns:
        (N, C, H, W) float, resampled bilinearly; edge pixels are replicated, since the
        borders of digit-like images are background.
    """
    n = x.shape[0]
    u = torch.rand(n, 4, generator=gen, device=x.device) * 2 - 1  # uniform in [-1, 1]
    angle = u[:, 0] * math.radians(degrees)
    zoom = 1 + u[:, 1] * scale
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    # affine_grid maps output to input coordinates in [-1, 1], so a shift of s of the side is 2s.
    theta = torch.stack([torch.stack([cos, -sin, u[:, 2] * 2 * shift], 1),
                         torch.stack([sin, cos, u[:, 3] * 2 * shift], 1)], 1)
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _load_splits(data_cfg, val_fraction: float, seed: int, log: Callable[[str], None]
                 ) -> tuple[Any, Any, dict[str, Any]]:
    """(train data, held-out data, what was used) for :func:`train_evaluator`: the train split
    with the test split held out when both load, else a stratified ``val_fraction`` of the
    split that loads is held out."""
    from dataclasses import replace

    from ganforge.data import build_dataset
    from ganforge.errors import DataError

    data, test = None, None
    if data_cfg.split == "train":
        try:
            data = build_dataset(data_cfg)
            test = build_dataset(replace(data_cfg, split="test"))
        except DataError as err:
            held_from = "train" if data is not None else "test"
            log(f"{'test' if data is not None else 'train'} split unavailable ({err}); "
                f"holding out part of the {held_from} split")
            data_cfg = replace(data_cfg, split=held_from)
        # A dataset without splits (an image folder) returns the same images for "test";
        # holding those out would measure accuracy on the training images.
        if test is not None and test.source == data.source:
            log("the dataset has no separate test split; holding out part of its images")
            test = None
    if data is None:
        data = build_dataset(data_cfg)
    if not data.is_image or data.y is None or data.y.dim() != 1 or data.n_classes < 2:
        raise ConfigError(f"dataset '{data_cfg.name}' has no class labels for images; "
                          "train-evaluator needs a labelled image dataset (e.g. mnist)")
    if test is not None:
        return data, test, {"train": f"{data_cfg.split} ({len(data)})",
                            "heldout": f"test ({len(test)})", "source": data.source}
    if not 0 < val_fraction < 1:
        raise ConfigError(f"val_fraction={val_fraction} must be in (0, 1), e.g. 0.2")
    tr, va = stratified_split(data.y, val_fraction, seed)

    def subset(idx: torch.Tensor):
        return replace(data, x=data.x[idx], y=data.y[idx], extra={})

    split = data_cfg.split
    return subset(tr), subset(va), {
        "train": f"{split} minus held-out ({len(tr)})",
        "heldout": f"{split}, stratified {val_fraction:g} (seed {seed}) ({len(va)})",
        "source": data.source}


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------

@torch.no_grad()
def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, n_classes: int,
              device: torch.device) -> tuple[float, list[Optional[float]]]:
    """Overall and per-class accuracy of ``model`` on uint8 (N, C, H, W) images ``x``."""
    model.eval()
    pred = torch.cat([model(x[i:i + INFER_BATCH].to(device).float().div(127.5).sub(1))[1]
                      .argmax(1).cpu() for i in range(0, len(x), INFER_BATCH)])
    right = pred == y
    # None (JSON null, not NaN) for a class absent from the held-out part.
    per_class = [right[y == k].float().mean().item() if (y == k).any() else None
                 for k in range(n_classes)]
    return right.float().mean().item(), per_class


def _fit(model: nn.Module, sampler: Any, epochs: int, lr: float, augment: bool, seed: int,
         log: Callable[[str], None]) -> None:
    """Train ``model`` for ``epochs`` passes of ``sampler`` (AdamW, one-cycle learning rate)."""
    start = time.perf_counter()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=5e-4)
    # One-cycle (warm-up, then annealing to ~0) reaches high accuracy in few epochs.
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=lr, total_steps=epochs * sampler.steps_per_epoch, pct_start=0.2)
    gen = torch.Generator(sampler.device).manual_seed(seed)
    for epoch in range(epochs):
        model.train()
        loss_sum, right, seen = 0.0, 0, 0
        for _ in range(sampler.steps_per_epoch):
            x, y = sampler.next()
            if augment:
                x = random_affine(x, gen)
            _, logits = model(x)
            # No label smoothing: it would cap the softmax confidence that IS relies on.
            loss = F.cross_entropy(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.item() * len(y)
            right += (logits.argmax(1) == y).sum().item()
            seen += len(y)
        log(f"epoch {epoch + 1}/{epochs}: loss {loss_sum / seen:.4f}, train accuracy "
            f"{right / seen:.4f} ({time.perf_counter() - start:.0f}s)")


def train_evaluator(data_cfg, epochs: int = 6, batch_size: int = 128, lr: float = 3e-3,
                    val_fraction: float = 0.2, seed: int = 0, out_path: Optional[str] = None,
                    augment: bool = True, threads: Optional[int] = None,
                    log: Callable[[str], None] = print, device: str = "cpu",
                    arch: str = "lenet") -> dict[str, Any]:
    """Train a domain evaluator on ``data_cfg``'s dataset, report held-out accuracy, save it.

    Args:
        data_cfg: a :class:`~ganforge.config.DataConfig` of a labelled image dataset.
        epochs: passes over the training part.
        batch_size / lr: AdamW mini-batch size and peak one-cycle learning rate.
        val_fraction: part of the split held out when no separate test split is available.
        seed: initialisation, batch order, augmentation and split seed.
        out_path: ``.safetensors``/``.json`` path or a folder; None -> the default folder.
        augment: random small rotations/shifts/zooms of every training batch.
        threads: torch CPU threads while training (None keeps the current setting).
        log: receives one line per epoch.
        device: "cpu", "cuda", "auto", ...

    Returns:
        report with ``heldout_accuracy``, sizes, ``seconds``, ``name`` and the saved ``path``.
    """
    from ganforge.data import BatchSampler
    from ganforge.training.setup import pick_device

    if arch not in ARCHS:
        raise ConfigError(f"unknown evaluator arch '{arch}'; valid: {', '.join(ARCHS)}")
    if epochs < 1 or batch_size < 1 or lr <= 0:
        raise ConfigError("epochs, batch size and lr must be positive")
    old_threads = torch.get_num_threads()
    torch.set_num_threads(threads or old_threads)
    try:
        start = time.perf_counter()
        dev = pick_device(device)
        train, held, used = _load_splits(data_cfg, val_fraction, seed, log)
        kwargs = {"in_channels": train.shape[0], "image_size": list(train.shape[1:]),
                  "n_classes": train.n_classes}
        torch.manual_seed(seed)
        model = ARCHS[arch](**kwargs).to(dev)
        _fit(model, BatchSampler(train, min(batch_size, len(train)), dev, seed), epochs, lr,
             augment, seed, log)
        # Held-out accuracy of the final model: no model selection on the held-out part.
        acc, per_class = _accuracy(model, held.x, held.y, train.n_classes, dev)
        seconds = time.perf_counter() - start
        used_threads = torch.get_num_threads()
    finally:
        torch.set_num_threads(old_threads)

    name = f"{data_cfg.name}-{arch}"
    meta = {
        "name": name, "arch": arch, "arch_kwargs": kwargs, "dataset": data_cfg.name,
        "data": {**used, "image_size": data_cfg.image_size, "channels": data_cfg.channels,
                 "limit": data_cfg.limit},
        "train_size": len(train), "heldout_size": len(held), "heldout_accuracy": acc,
        "per_class_accuracy": per_class, "class_names": train.class_names,
        "input_shape": list(train.shape), "feature_dim": model.embed[0].out_features,
        "training": {"epochs": epochs, "batch_size": batch_size, "lr": lr, "augment": augment,
                     "seed": seed, "optimizer": "AdamW one-cycle", "seconds": round(seconds, 1),
                     "device": str(dev), "threads": used_threads},
    }
    st_path, json_path = save_evaluator(model, evaluator_path(out_path, name), meta)
    log(f"held-out accuracy {acc:.4f} on {len(held)} images ({used['heldout']}); "
        f"saved {st_path}")
    return {"name": name, "heldout_accuracy": acc, "per_class_accuracy": per_class,
            "train_size": len(train), "heldout_size": len(held), "seconds": seconds,
            "path": str(st_path), "json": str(json_path), "data": meta["data"]}


# --------------------------------------------------------------------------------------------
# The feature extractor
# --------------------------------------------------------------------------------------------

class DomainEvaluator(FeatureExtractor):
    """A trained evaluator as a :class:`FeatureExtractor` (features (N, F), logits (N, K)).

    Args:
        path: its ``.safetensors`` or ``.json`` file.
        device: where inference runs; outputs always come back on the CPU.
    """

    resize_method = "bilinear-antialias"

    def __init__(self, path: str | Path, device: str | torch.device = "cpu") -> None:
        meta, state, digest = read_evaluator(path)
        arch = meta.get("arch")
        if arch not in ARCHS:
            raise CheckpointError(f"evaluator '{path}' has unknown arch '{arch}'; upgrade "
                                  "ganforge or train it again")
        try:
            model = ARCHS[arch](**meta["arch_kwargs"])
            model.load_state_dict(state)
        except (KeyError, TypeError, RuntimeError) as err:
            raise CheckpointError(f"evaluator '{path}' does not match its architecture "
                                  f"({type(err).__name__}); train it again") from None
        self.meta = meta
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.name = meta["name"]
        self.checksum = digest
        self.input_shape = tuple(meta["input_shape"])
        self.n_classes = int(meta["arch_kwargs"]["n_classes"])
        self.class_names = meta.get("class_names")
        self.feature_dim = int(meta["feature_dim"])

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) float in [-1, 1] (or uint8 0..255), any size and 1 or 3 channels ->
        (N, *input_shape) float32 in [-1, 1] on the evaluator's device."""
        x = images.to(self.device)
        x = x.float().div(127.5).sub(1) if x.dtype == torch.uint8 else x.float()
        c, want = x.shape[1], self.input_shape[0]
        if c == 1 and want == 3:
            x = x.expand(-1, 3, -1, -1)
        elif c == 3 and want == 1:
            x = (x * x.new_tensor(LUMA).view(1, 3, 1, 1)).sum(1, keepdim=True)
        elif c != want:
            raise GanforgeError(f"evaluator '{self.name}' takes {want}-channel images, got {c}; "
                                "use an evaluator trained on this kind of image")
        if tuple(x.shape[-2:]) != self.input_shape[1:]:
            x = F.interpolate(x, size=self.input_shape[1:], mode="bilinear", antialias=True,
                              align_corners=False)
        return x

    batch_size = INFER_BATCH

    def forward(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Features (B, F) and logits (B, K) of one prepared batch."""
        return self.model(batch)

    def provenance(self) -> dict[str, Any]:
        return {**super().provenance(), "extractor_arch": self.meta["arch"],
                "extractor_trained_on": self.meta["data"],
                "extractor_heldout_accuracy": self.meta["heldout_accuracy"]}


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------

def add_train_evaluator_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train-evaluator", help="train a domain evaluator (classifier) for FID/IS on a dataset",
        description="Train a small classifier whose features serve FID/KID and whose logits "
        "serve IS and label accuracy. Example: ganforge train-evaluator --dataset mnist "
        "--data-root ../data")
    p.add_argument("--dataset", required=True, help="a labelled image dataset, e.g. mnist")
    p.add_argument("--data-root", help="folder with the dataset files (data.root)")
    p.add_argument("--split", choices=("train", "test"), default="train",
                   help="train (default): test split held out; without a train split, or "
                   "with 'test': hold out --val-fraction of the test split")
    p.add_argument("--limit", type=int, help="use only the first N images of each split")
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=3e-3, help="peak one-cycle learning rate")
    p.add_argument("--val-fraction", type=float, default=0.2,
                   help="held-out part when there is no separate test split")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-augment", action="store_true", help="no random shifts/rotations")
    p.add_argument("--no-download", action="store_true", help="never download dataset files")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--out", "-o", help="NAME.safetensors path or a folder (default: "
                   "$GANFORGE_HOME/evaluators or ~/.cache/ganforge/evaluators)")


def cmd_train_evaluator(args: argparse.Namespace) -> int:
    from ganforge.config import DataConfig

    data_cfg = DataConfig(name=args.dataset, root=args.data_root, split=args.split,
                          download=not args.no_download, limit=args.limit)
    report = train_evaluator(data_cfg, epochs=args.epochs, batch_size=args.batch_size,
                             lr=args.lr, val_fraction=args.val_fraction, seed=args.seed,
                             out_path=args.out, augment=not args.no_augment,
                             threads=args.threads, device=args.device)
    print(f"held-out accuracy: {report['heldout_accuracy']:.4f} "
          f"({report['heldout_size']} images: {report['data']['heldout']})")
    print(f"saved: {report['path']} (+ .json); use it as extractor '{report['name']}' or by path")
    return 0
