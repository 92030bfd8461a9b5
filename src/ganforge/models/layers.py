"""Building blocks shared by the model families: weight init, label embedding, maxout, norms.

Everything here is a plain ``nn.Module`` or a function returning one; nothing reads the config.
The families pass strings such as ``"batch"`` or ``"normal02"`` that came from the stored
constructor kwargs, so a checkpoint rebuilds exactly the same layers.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
from torch import nn

from ganforge.errors import ConfigError

INIT_SCHEMES = ("normal02", "xavier", "default")
CONV_NORMS = ("batch", "layer", "none")
LINEAR_NORMS = ("batch", "layer", "none")

_WEIGHTED = (nn.Conv1d, nn.Conv2d, nn.ConvTranspose2d, nn.Linear)
_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)


def init_weights(module: nn.Module, scheme: str) -> nn.Module:
    """Initialise every conv / linear / batch-norm layer inside ``module`` in place.

    Schemes:
        ``"normal02"``: conv, transposed conv and linear weights ~ N(0, 0.02), biases 0;
            BatchNorm weights ~ N(1, 0.02), biases 0 (DCGAN paper, seeds 000, 003, 004).
        ``"xavier"``: xavier_uniform_ on conv / linear weights, biases 0; BatchNorm as
            ``"normal02"`` (seed 002 uses Xavier for its convs).
        ``"default"``: leave PyTorch's own initialisation untouched.

    Label embeddings, LayerNorm and GroupNorm keep PyTorch's defaults in every scheme: the
    reference implementations only re-initialise convs, linears and BatchNorm.

    Args:
        module: the network (walked recursively).
        scheme: one of :data:`INIT_SCHEMES`.

    Returns:
        ``module`` itself, for chaining.

    Raises:
        ConfigError: unknown scheme.
    """
    if scheme not in INIT_SCHEMES:
        raise ConfigError(f"unknown init scheme '{scheme}'; set model.init to one of: {', '.join(INIT_SCHEMES)}")
    if scheme == "default":
        return module
    for m in module.modules():
        if isinstance(m, _WEIGHTED):
            if scheme == "normal02":
                nn.init.normal_(m.weight, 0.0, 0.02)
            else:
                nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, _BATCH_NORMS) and m.affine:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
    return module


class LabelEmbedding(nn.Module):
    """A learned table of label vectors, for class indices or multi-hot attribute vectors.

    For class labels it is an ``nn.Embedding`` lookup. For attributes (``multi_label=True``,
    e.g. CelebA's 40 binary attributes) the same (K, E) table is applied as a linear map
    ``y @ table``: the sum of the embeddings of the attributes that are on. A one-hot y gives
    the lookup, so both kinds share one parameter layout (``table.weight``).

    Args:
        n_classes: number of classes (or attributes) K.
        dim: embedding size E (the PyTorch-GAN cGAN uses E = K).
        multi_label: y is an (N, K) float vector in {0, 1} instead of (N,) class indices.
    """

    def __init__(self, n_classes: int, dim: int, multi_label: bool = False) -> None:
        super().__init__()
        if n_classes <= 0 or dim <= 0:
            raise ConfigError(
                f"label embedding needs positive sizes, got {n_classes} classes x {dim}; "
                "set model.embed_dim > 0 and use a labelled dataset"
            )
        self.n_classes = n_classes
        self.dim = dim
        self.multi_label = multi_label
        self.table = nn.Embedding(n_classes, dim)

    def forward(self, y: Optional[torch.Tensor]) -> torch.Tensor:
        """Look labels up.

        Args:
            y: (N,) int64 class indices in [0, K), or (N, K) float attributes when multi-label.

        Returns:
            (N, dim) float embeddings.
        """
        if y is None:
            # A conditional net called without labels is a caller bug, not a user mistake.
            raise ValueError("this model is conditional: pass y, the (N,) int64 class labels")
        if self.multi_label:
            if y.dim() != 2 or y.shape[1] != self.n_classes:
                raise ValueError(f"attribute labels must have shape (N, {self.n_classes}), "
                                 f"got {tuple(y.shape)}")
            return y.to(self.table.weight.dtype) @ self.table.weight
        if y.dim() != 1:
            raise ValueError(f"labels must have shape (N,), got {tuple(y.shape)}")
        return self.table(y.long())


def spectral_norm_all(module: nn.Module) -> nn.Module:
    """Spectrally normalise every conv, linear and embedding weight inside ``module`` (SNGAN).

    Uses ``torch.nn.utils.parametrizations.spectral_norm`` (one power iteration per forward in
    training mode), which keeps each layer's largest singular value at about 1 and so bounds D's
    Lipschitz constant — Miyato et al. 2018. Normalisation layers are left alone.

    Returns:
        ``module`` itself, for chaining.
    """
    from torch.nn.utils.parametrizations import spectral_norm

    for m in list(module.modules()):
        if isinstance(m, (*_WEIGHTED, nn.Embedding)):
            spectral_norm(m)
    return module


class Maxout(nn.Module):
    """A linear maxout unit (Goodfellow et al. 2013): max over ``pieces`` affine maps.

    Computed as one ``Linear(in, out * pieces)`` followed by a max over groups of ``pieces``
    consecutive outputs, so it costs one matrix multiply.

    Args:
        in_features: input size I.
        out_features: number of maxout units U.
        pieces: affine pieces per unit P (>= 1; P = 1 is a plain linear layer).
    """

    def __init__(self, in_features: int, out_features: int, pieces: int) -> None:
        super().__init__()
        if pieces < 1:
            raise ConfigError(f"maxout needs at least 1 piece, got {pieces}; use e.g. 5")
        self.in_features = in_features
        self.out_features = out_features
        self.pieces = pieces
        self.linear = nn.Linear(in_features, out_features * pieces)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x: (N, I). Returns: (N, U), the max over each unit's P pieces."""
        a = self.linear(x)
        return a.view(x.shape[0], self.out_features, self.pieces).amax(dim=2)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, pieces={self.pieces}"


def _check_norm(kind: str, choices: Sequence[str], what: str) -> None:
    if kind not in choices:
        raise ConfigError(f"unknown {what} norm '{kind}'; use one of: {', '.join(choices)}")


def linear_norm(kind: str, features: int) -> nn.Module:
    """Normalisation for an (N, F) activation.

    Args:
        kind: ``"batch"`` (BatchNorm1d, default eps — not the 0.8 typo of popular cGAN copies),
            ``"layer"`` (LayerNorm over F) or ``"none"`` (identity).
        features: F.
    """
    _check_norm(kind, LINEAR_NORMS, "linear")
    if kind == "batch":
        return nn.BatchNorm1d(features)
    if kind == "layer":
        return nn.LayerNorm(features)
    return nn.Identity()


def conv_norm(kind: str, channels: int, spatial: Optional[int | tuple[int, int]] = None
              ) -> nn.Module:
    """Normalisation for an (N, C, H, W) activation.

    ``"layer"`` normalises each sample over all of (C, H, W), as the WGAN-GP critic does
    (seed 004: every BatchNorm of the critic replaced by LayerNorm). With ``spatial`` known it is
    ``nn.LayerNorm([C, H, W])`` (elementwise affine, like the reference code); without it,
    ``GroupNorm(1, C)``, which computes the same statistics with a per-channel affine.

    Args:
        kind: ``"batch"``, ``"layer"`` or ``"none"``.
        channels: C.
        spatial: H = W of the activation, or (H, W), when known.
    """
    _check_norm(kind, CONV_NORMS, "conv")
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "layer":
        if spatial is None:
            return nn.GroupNorm(1, channels)
        h, w = (spatial, spatial) if isinstance(spatial, int) else spatial
        return nn.LayerNorm([channels, h, w])
    return nn.Identity()


def dropout(p: float) -> nn.Module:
    """``nn.Dropout(p)``, or an identity when ``p == 0`` so summaries stay short."""
    if not 0.0 <= p < 1.0:
        raise ConfigError(f"dropout probability {p} is outside [0, 1); use e.g. 0.25")
    return nn.Dropout(p) if p > 0 else nn.Identity()


def flat_size(shape: Sequence[int]) -> int:
    """Number of values in one sample of ``shape``: (C, H, W) -> C*H*W, (D,) -> D."""
    return int(math.prod(shape))


def as_shape(shape: Sequence[int]) -> tuple[int, ...]:
    """Normalise a stored shape (a JSON list after a checkpoint round trip) to a tuple of ints."""
    return tuple(int(s) for s in shape)
