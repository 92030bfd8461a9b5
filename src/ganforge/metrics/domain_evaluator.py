"""The domain evaluator's network and the trained evaluator as a feature extractor.

Inception-v3 features say little about 28x28 digits, so FID/KID on MNIST-like data use a
classifier trained on the dataset itself (the role LeNet plays in many GAN papers): its
penultimate features serve FID/KID/precision-recall, its logits IS and label accuracy.

An evaluator file (:mod:`ganforge.metrics.evaluator_files`) made by the current recipe holds two
nets trained on different seeds and data splits: the primary one, whose features and logits
every metric uses, and its twin, whose class predictions ``label-acc`` sets beside the
primary's to show how much the reading depends on the evaluator itself. Training lives in
:mod:`ganforge.metrics.evaluator`.

An attribute evaluator (``task: "attributes"`` in its JSON, e.g. ``celeba-lenet``) has K
sigmoid outputs instead of K softmax classes: its logits answer "has attribute k?" one by one
(``multi_label``), and ``attr-acc`` (:mod:`ganforge.metrics.attributes`) reads them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.errors import CheckpointError, ConfigError, GanforgeError
from ganforge.metrics.base import FeatureExtractor
from ganforge.metrics.evaluator_files import (net_states, read_evaluator, recipe_problem,
                                              recipe_version)

# Images per forward pass at inference. Measured on a 2-core CPU, 250 is ~1.5x faster than
# 1000: the activations of a smaller batch stay in cache.
INFER_BATCH = 250
LUMA = (0.299, 0.587, 0.114)  # RGB -> gray weights, the ones ganforge.data uses


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


class DomainEvaluator(FeatureExtractor):
    """A trained evaluator as a :class:`FeatureExtractor` (features (N, F), logits (N, K)).

    Features and logits are the primary net's; :meth:`twin_logits` gives the twin's logits.

    An evaluator trained by an older recipe than the current one (e.g. a v1 file, trained on
    clean images only), or without the corruption augmentation, is refused with a one-line error
    telling how to retrain it, so one found by name is never reused by accident.
    ``allow_old_recipe=True`` loads it anyway: for a user who names its file explicitly (to
    re-score old results or compare recipes); its provenance then records the old recipe, so
    the numbers it produces say so.

    Args:
        path: its ``.safetensors`` or ``.json`` file.
        device: where inference runs; outputs always come back on the CPU.
        allow_old_recipe: load an evaluator of an older recipe instead of refusing it.

    Raises:
        CheckpointError: one line, for an unreadable, tampered or mismatched file, or an old
            recipe without ``allow_old_recipe``.
    """

    resize_method = "bilinear-antialias"
    batch_size = INFER_BATCH

    def __init__(self, path: str | Path, device: str | torch.device = "cpu",
                 allow_old_recipe: bool = False) -> None:
        meta, state, digest = read_evaluator(path)
        problem = recipe_problem(meta)
        if problem is not None and not allow_old_recipe:
            raise CheckpointError(problem)
        self.device = torch.device(device)
        nets = {role: self._build(meta, part, path).to(self.device).eval()
                for role, part in net_states(meta, state).items()}
        if "primary" not in nets:
            raise CheckpointError(f"evaluator '{path}' has no primary net; train it again")
        self.meta = meta
        self.model = nets["primary"]
        self.twin: Optional[nn.Module] = nets.get("twin")
        self.name = meta["name"]
        self.checksum = digest
        self.recipe_version = recipe_version(meta)
        self.input_shape = tuple(meta["input_shape"])
        self.n_classes = int(meta["arch_kwargs"]["n_classes"])
        self.class_names = meta.get("class_names")
        # K independent sigmoid outputs (attributes) rather than one softmax over K classes.
        self.task: str = meta.get("task", "classes")
        self.multi_label = self.task == "attributes"
        self.feature_dim = int(meta["feature_dim"])

    @staticmethod
    def _build(meta: dict[str, Any], state: dict[str, torch.Tensor], path: Any) -> nn.Module:
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
        return model

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

    def forward(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Features (B, F) and logits (B, K) of one prepared batch (the primary net)."""
        return self.model(batch)

    @torch.no_grad()
    def twin_logits(self, images: torch.Tensor) -> Optional[torch.Tensor]:
        """The twin net's logits (N, K) float32 on the CPU for images as :meth:`prepare` takes
        them, computed ``batch_size`` at a time; None for an evaluator without a twin."""
        if self.twin is None:
            return None
        out = [self.twin(self.prepare(images[i:i + self.batch_size]))[1].float().cpu()
               for i in range(0, images.shape[0], self.batch_size)]
        return torch.cat(out) if out else torch.empty(0, self.n_classes)

    def provenance(self) -> dict[str, Any]:
        corrupted = self.meta.get("corrupted_accuracy") or {}
        return {**super().provenance(), "extractor_arch": self.meta["arch"],
                "extractor_recipe": self.recipe_version,
                # False for an old recipe or an ablation (e.g. --augment affine) loaded by path.
                "extractor_recipe_current": recipe_problem(self.meta) is None,
                "extractor_twin": self.twin is not None,
                "extractor_trained_on": self.meta["data"],
                "extractor_heldout_accuracy": self.meta["heldout_accuracy"],
                "extractor_corrupted_accuracy": corrupted.get("mean"),
                **({"extractor_task": self.task,
                    "extractor_heldout_balanced_accuracy":
                        self.meta.get("heldout_balanced_accuracy")} if self.multi_label else {})}
