"""Training domain evaluators: ``ganforge train-evaluator`` and :func:`train_evaluator`.

The network and the loaded evaluator (:class:`DomainEvaluator`, re-exported here) live in
:mod:`ganforge.metrics.domain_evaluator`, the file format in
:mod:`ganforge.metrics.evaluator_files`, the lookup by name in :mod:`ganforge.metrics.extractors`.

The recipe (version :data:`RECIPE_VERSION`):

- every training batch goes through :class:`~ganforge.metrics.corruptions.CorruptionMix`: a
  random affine on every image and, on most images, a random mix of the artefacts young
  generators make (noise, speckle, blur, elastic warps, contrast, ...), so those artefacts do
  not flip the evaluator's answer on legible generated images;
- held-out accuracy is measured on clean images and under each corruption of the fixed suite
  (:data:`~ganforge.metrics.corruptions.SUITE`), all stored in the evaluator's JSON;
- two nets are trained, differing in seed and data split: the primary one and its twin. Both
  go into one file; label accuracy reports how often they disagree on the same samples.

What the nets learn — one class per image, or binary attributes per image (CelebA's 40, with
sigmoid outputs) — is a :class:`~ganforge.metrics.evaluator_tasks.Task`: the loss, the split,
the held-out report and the corruptions that suit the images differ, the recipe does not.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from typing import Any, Callable, Optional

import torch
from torch import nn

from ganforge.errors import ConfigError
from ganforge.metrics.corruptions import SUITE_SEED, random_affine
from ganforge.metrics.domain_evaluator import (  # noqa: F401  (re-exported)
    ARCHS,
    INFER_BATCH,
    DomainEvaluator,
    LeNetEvaluator,
)
from ganforge.metrics.evaluator_files import RECIPE_VERSION, evaluator_path, save_evaluator
from ganforge.metrics.evaluator_tasks import (  # noqa: F401  (stratified_split re-exported)
    Task,
    attribute_table,
    stratified_split,
    task_of,
)

# Recipe defaults (measured in benchmarks/results/evaluator_mnist.md): enough epochs that the
# corruption mix costs no clean accuracy.
EPOCHS = 10
WIDTH = 24
SUITE_IMAGES = 5000  # held-out images the corruption suite scores (all of a smaller held-out set)
# The augmentation of each ``--augment`` choice, for a task: "corruptions" is the task's mix.
AUGMENTS: dict[str, Callable[[Task], Optional[Callable]]] = {
    "corruptions": lambda task: task.mix(),
    "affine": lambda task: random_affine,  # recipe v1's augmentation, for comparison
    "none": lambda task: None,
}


# --------------------------------------------------------------------------------------------
# Data: splits
# --------------------------------------------------------------------------------------------

def _load_data(data_cfg, log: Callable[[str], None]
               ) -> tuple[Any, Optional[Any], str, Any]:
    """(data, separate test split or None, name of the split ``data`` is, the DataConfig used)
    for training.

    A dataset without class labels whose builder offers attribute rows (``data.labels`` =
    "attributes", e.g. celeba) is read with them.
    """
    from ganforge.data import build_dataset
    from ganforge.errors import DataError

    def build(cfg):
        """The dataset, with its attribute rows when it has no classes but offers them."""
        data = build_dataset(cfg)
        # Only a dataset that takes data.labels (celeba) offers attribute rows.
        if data.y is None and getattr(cfg, "labels", None) == "class":
            with_rows = build_dataset(replace(cfg, labels="attributes"))
            if with_rows.y is not None:
                log(f"{cfg.name} has no classes: learning its {with_rows.y.shape[1]} "
                    "attributes (data.labels=attributes)")
                return with_rows, replace(cfg, labels="attributes")
        return data, cfg

    data, test = None, None
    if data_cfg.split == "train":
        try:
            data, data_cfg = build(data_cfg)
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
        data, data_cfg = build(data_cfg)
    if not data.is_image or data.y is None or (data.y.dim() == 1 and data.n_classes < 2):
        raise ConfigError(f"dataset '{data_cfg.name}' has no class labels for images; "
                          "train-evaluator needs a labelled image dataset (e.g. mnist)")
    task_of(data).check(data, data_cfg.name)
    return data, test, data_cfg.split, data_cfg


def _net_split(data: Any, test: Optional[Any], split: str, val_fraction: float, split_seed: int,
               twin: bool, task: Task) -> tuple[Any, Any, dict[str, Any]]:
    """(train part, held-out part, what was used) for one net.

    With a separate test split, it is the held-out part of both nets; the primary net trains on
    all of ``data`` and the twin on ``1 - val_fraction`` of it drawn with ``split_seed``.
    Otherwise each net holds out its own ``val_fraction``. Splits are stratified by class for
    classes and seeded random for attributes (``task.split``).
    """
    def subset(idx: torch.Tensor):
        return replace(data, x=data.x[idx], y=data.y[idx], extra={})

    if test is not None and not twin:
        return data, test, {"train": f"{split} ({len(data)})", "heldout": f"test ({len(test)})",
                            "source": data.source}
    if not 0 < val_fraction < 1:
        raise ConfigError(f"val_fraction={val_fraction} must be in (0, 1), e.g. 0.2")
    tr, va = task.split(data.y, val_fraction, split_seed)
    if len(va) == 0 and test is None:
        raise ConfigError(f"val_fraction={val_fraction} holds out no image of {len(data)}; "
                          "raise --val-fraction or use more images")
    how = "stratified" if task.name == "classes" else "random"
    if test is not None:
        return subset(tr), test, {
            "train": f"{split}, {how} {1 - val_fraction:g} (seed {split_seed}) ({len(tr)})",
            "heldout": f"test ({len(test)})", "source": data.source}
    return subset(tr), subset(va), {
        "train": f"{split} minus held-out ({len(tr)})",
        "heldout": f"{split}, {how} {val_fraction:g} (seed {split_seed}) ({len(va)})",
        "source": data.source}


# --------------------------------------------------------------------------------------------
# Training one net
# --------------------------------------------------------------------------------------------

@torch.no_grad()
def _logits(model: nn.Module, x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """(N, K) logits (CPU) of uint8 or [-1, 1] float (N, C, H, W) images ``x``."""
    model.eval()
    out = []
    for i in range(0, len(x), INFER_BATCH):
        xb = x[i:i + INFER_BATCH].to(device)
        xb = xb.float().div(127.5).sub(1) if xb.dtype == torch.uint8 else xb.float()
        out.append(model(xb)[1].float().cpu())
    return torch.cat(out)


def _fit(model: nn.Module, sampler: Any, epochs: int, lr: float, augment: Optional[Callable],
         seed: int, log: Callable[[str], None], task: Task) -> None:
    """Train ``model`` for ``epochs`` passes of ``sampler`` (AdamW, one-cycle learning rate).

    Args:
        augment: ``augment(x, gen)`` applied to every float batch, or None.
        task: the loss and the predictions counted as right in the log.
    """
    start = time.perf_counter()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=5e-4)
    # One-cycle (warm-up, then annealing to ~0) reaches high accuracy in few epochs. The
    # warm-up is a fifth of the steps, but at least 1.5: OneCycleLR divides by
    # pct_start * total - 1, which is 0 for a 5-step run at 0.2.
    total = epochs * sampler.steps_per_epoch
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=lr, total_steps=total, pct_start=min(0.75, max(0.2, 1.5 / total)))
    gen = torch.Generator(sampler.device).manual_seed(seed)
    for epoch in range(epochs):
        model.train()
        loss_sum, right, seen, images = 0.0, 0, 0, 0
        for _ in range(sampler.steps_per_epoch):
            x, y = sampler.next()
            if augment is not None:
                x = augment(x, gen)
            _, logits = model(x)
            loss = task.loss(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.item() * len(y)
            images += len(y)
            n_right, n_answers = task.n_right(logits.detach(), y)
            right += n_right
            seen += n_answers
        log(f"epoch {epoch + 1}/{epochs}: loss {loss_sum / images:.4f}, train accuracy "
            f"{right / seen:.4f} ({time.perf_counter() - start:.0f}s)")


def _train_net(train: Any, held: Any, kwargs: dict[str, Any], arch: str, seed: int,
               settings: dict[str, Any], dev: torch.device, log: Callable[[str], None],
               task: Task) -> tuple[nn.Module, dict[str, Any]]:
    """Train one net on ``train``; its held-out accuracy clean, per class (or attribute) and
    under the suite."""
    from ganforge.data import BatchSampler

    torch.manual_seed(seed)
    model = ARCHS[arch](**kwargs).to(dev)
    sampler = BatchSampler(train, min(settings["batch_size"], len(train)), dev, seed)
    task.prepare(train.y)
    _fit(model, sampler, settings["epochs"], settings["lr"],
         AUGMENTS[settings["augment"]](task), seed, log, task)
    # Accuracies of the final model: no model selection on the held-out part.
    pred = task.predict(_logits(model, held.x, dev))
    report = task.heldout(pred, held.y.cpu(), train)
    n_suite = min(len(held), SUITE_IMAGES)
    report.update(task.suite_report(lambda xb: _logits(model, xb, dev), held.x[:n_suite],
                                    held.y[:n_suite].cpu()))
    return model, {"seed": seed, "train_size": len(train), "heldout_size": len(held),
                   **report, "suite_images": n_suite}


def _balanced_note(report: dict[str, Any]) -> str:
    """", balanced 0.xxxx (majority baseline 0.yyyy)" for an attribute evaluator, else ""."""
    if report.get("heldout_balanced_accuracy") is None:
        return ""
    return (f"; attributes: balanced accuracy {report['heldout_balanced_accuracy']:.4f}, "
            f"majority-class baseline {report['majority_baseline']:.4f}")


# --------------------------------------------------------------------------------------------
# The recipe
# --------------------------------------------------------------------------------------------

def train_evaluator(data_cfg, epochs: int = EPOCHS, batch_size: int = 128, lr: float = 3e-3,
                    val_fraction: float = 0.2, seed: int = 0, out_path: Optional[str] = None,
                    augment: str = "corruptions", threads: Optional[int] = None,
                    log: Callable[[str], None] = print, device: str = "cpu",
                    arch: str = "lenet", width: int = WIDTH) -> dict[str, Any]:
    """Train a domain evaluator and its twin on ``data_cfg``'s dataset, measure, save them.

    The primary net uses ``seed``; the twin uses ``seed + 1`` for its initialisation, batch
    order, augmentation and data split (see :func:`_net_split`).

    Args:
        data_cfg: a :class:`~ganforge.config.DataConfig` of a labelled image dataset.
        epochs: passes over the training part.
        batch_size / lr: AdamW mini-batch size and peak one-cycle learning rate.
        val_fraction: part of a split held out (or left out of the twin's training part).
        seed: the primary net's initialisation, batch order, augmentation and split seed.
        out_path: ``.safetensors``/``.json`` path or a folder; None -> the default folder.
        augment: "corruptions" (the recipe), or "affine" / "none" for comparisons; evaluators
            trained without corruptions are refused when later loaded by name.
        threads: torch CPU threads while training (None keeps the current setting).
        log: receives progress lines.
        device: "cpu", "cuda", "auto", ...
        arch / width: the network and the channels of its first conv.

    Returns:
        report with ``heldout_accuracy``, ``corrupted_accuracy`` ({corruption: acc, "mean"}),
        sizes, ``twin`` (the same for the twin), ``seconds``, ``name`` and the saved ``path``.
    """
    from ganforge.runtime import pick_device

    if arch not in ARCHS:
        raise ConfigError(f"unknown evaluator arch '{arch}'; valid: {', '.join(ARCHS)}")
    if augment not in AUGMENTS:
        raise ConfigError(f"unknown augment '{augment}'; valid: {', '.join(AUGMENTS)}")
    if epochs < 1 or batch_size < 1 or lr <= 0 or width < 1:
        raise ConfigError("epochs, batch size, lr and width must be positive")
    settings = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "augment": augment}
    old_threads = torch.get_num_threads()
    torch.set_num_threads(threads or old_threads)
    try:
        start = time.perf_counter()
        dev = pick_device(device)
        data, test, split, data_cfg = _load_data(data_cfg, log)
        task = task_of(data)
        n_outputs = data.y.shape[1] if task.name == "attributes" else data.n_classes
        kwargs = {"in_channels": data.shape[0], "image_size": list(data.shape[1:]),
                  "n_classes": n_outputs, "width": width}
        nets, reports, used = {}, {}, {}
        for role, net_seed in (("primary", seed), ("twin", seed + 1)):
            train, held, used[role] = _net_split(data, test, split, val_fraction, net_seed,
                                                 twin=role == "twin", task=task)
            nets[role], reports[role] = _train_net(
                train, held, kwargs, arch, net_seed, settings, dev,
                lambda line, r=role: log(f"{r}: {line}"), task)
            log(f"{role}: held-out accuracy {reports[role]['heldout_accuracy']:.4f} clean, "
                f"{reports[role]['corrupted_accuracy']['mean']:.4f} corrupted (mean)"
                + _balanced_note(reports[role]))
        seconds = time.perf_counter() - start
        used_threads = torch.get_num_threads()
    finally:
        torch.set_num_threads(old_threads)

    name, primary = f"{data_cfg.name}-{arch}", reports["primary"]
    mix = AUGMENTS[augment](task)
    meta = {
        "name": name, "arch": arch, "arch_kwargs": kwargs, "dataset": data_cfg.name,
        "task": task.name, "recipe_version": RECIPE_VERSION,
        "recipe": {"augment": augment, **task.describe(),
                   "mix": mix.describe() if hasattr(mix, "describe") else None,
                   "suite": task.suite, "suite_seed": SUITE_SEED},
        "data": {**used["primary"], "image_size": data_cfg.image_size,
                 "channels": data_cfg.channels, "limit": data_cfg.limit,
                 "labels": getattr(data_cfg, "labels", None), "val_fraction": val_fraction,
                 "split_seed": seed},
        **{k: v for k, v in primary.items() if k not in ("seed",)},
        "twin": {**reports["twin"], "data": used["twin"]},
        "class_names": data.class_names, "input_shape": list(data.shape),
        "feature_dim": nets["primary"].embed[0].out_features,
        "training": {**settings, "seed": seed, "twin_seed": seed + 1, "width": width,
                     "optimizer": "AdamW one-cycle", "seconds": round(seconds, 1),
                     "device": str(dev), "threads": used_threads},
    }
    st_path, json_path = save_evaluator(nets, evaluator_path(out_path, name), meta)
    log(f"saved {st_path}")
    return {"name": name, **primary, "twin": meta["twin"], "seconds": seconds,
            "path": str(st_path), "json": str(json_path), "data": meta["data"]}


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------

def add_train_evaluator_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train-evaluator", help="train a domain evaluator (classifier) for FID/IS on a dataset",
        description="Train a small classifier (and its twin) whose features serve FID/KID and "
        "whose logits serve IS and label accuracy, robust to the artefacts generators make. "
        "Example: ganforge train-evaluator --dataset mnist --data-root ../data")
    p.add_argument("--dataset", required=True, help="a labelled image dataset, e.g. mnist")
    p.add_argument("--data-root", help="folder with the dataset files (data.root)")
    p.add_argument("--split", choices=("train", "test"), default="train",
                   help="train (default): test split held out; without a train split, or "
                   "with 'test': hold out --val-fraction of the test split")
    p.add_argument("--limit", type=int, help="use only the first N images of each split")
    p.add_argument("--image-size", type=int, help="train at this square size (data.image_size; "
                   "default: the dataset's, 64 for celeba); other sizes are resized to it")
    p.add_argument("--epochs", type=int, default=EPOCHS)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=3e-3, help="peak one-cycle learning rate")
    p.add_argument("--width", type=int, default=WIDTH, help="channels of the first conv")
    p.add_argument("--val-fraction", type=float, default=0.2,
                   help="held-out part when there is no separate test split")
    p.add_argument("--seed", type=int, default=0, help="primary net's seed (the twin: +1)")
    p.add_argument("--augment", choices=tuple(AUGMENTS), default="corruptions",
                   help="corruptions (default, the recipe); affine or none only for "
                   "comparisons: such evaluators are refused when loaded by name")
    p.add_argument("--no-download", action="store_true", help="never download dataset files")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--out", "-o", help="NAME.safetensors path or a folder (default: "
                   "$GANFORGE_HOME/evaluators or ~/.cache/ganforge/evaluators)")


def cmd_train_evaluator(args: argparse.Namespace) -> int:
    from ganforge.config import DataConfig

    data_cfg = DataConfig(name=args.dataset, root=args.data_root, split=args.split,
                          download=not args.no_download, limit=args.limit,
                          image_size=args.image_size)
    report = train_evaluator(data_cfg, epochs=args.epochs, batch_size=args.batch_size,
                             lr=args.lr, val_fraction=args.val_fraction, seed=args.seed,
                             out_path=args.out, augment=args.augment, threads=args.threads,
                             device=args.device, width=args.width)
    for role, rep in (("evaluator", report), ("twin", report["twin"])):
        corrupted = rep["corrupted_accuracy"]
        worst = min((k for k in corrupted if k != "mean"), key=corrupted.get)
        print(f"{role} held-out accuracy: {rep['heldout_accuracy']:.4f} clean, "
              f"{corrupted['mean']:.4f} corrupted (mean of {len(corrupted) - 1}; worst "
              f"{worst} {corrupted[worst]:.4f}) ({rep['heldout_size']} images: "
              f"{rep['data']['heldout']})")
    if report.get("per_attribute"):  # attributes: each one beside its majority baseline
        print(attribute_table(report))
    print(f"saved: {report['path']} (+ .json, recipe v{RECIPE_VERSION}); use it as extractor "
          f"'{report['name']}' or by path")
    return 0
