"""Building blocks shared by the model families: weight init, label embedding, maxout, norms,
dropout, minibatch standard deviation.

Everything here is a plain ``nn.Module`` or a function returning one; nothing reads the config.
The families pass strings such as ``"batch"`` or ``"normal02"`` that came from the stored
constructor kwargs, so a checkpoint rebuilds exactly the same layers.
"""

from __future__ import annotations

import math
import struct
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
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
    """A learned table of label vectors, for class indices or (N, K) condition vectors.

    For class labels it is an ``nn.Embedding`` lookup. For condition vectors
    (``multi_label=True``) the same (K, E) table is applied as a linear map ``y @ table``. With
    0/1 attributes (CelebA's 40) that is the sum of the embeddings of the attributes that are
    on; with continuous values (an angle's (cos, sin), image features, standardised
    measurements) it is the general linear embedding of the cGAN paper's "any auxiliary
    information". A one-hot y gives the lookup, so all kinds share one parameter layout
    (``table.weight``).

    Args:
        n_classes: number of classes (or condition columns) K.
        dim: embedding size E (the PyTorch-GAN cGAN uses E = K).
        multi_label: y is an (N, K) float condition vector (0/1 or continuous) instead of (N,)
            class indices.
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
            y: (N,) int64 class indices in [0, K), or (N, K) float condition rows when
                multi-label.

        Returns:
            (N, dim) float embeddings.
        """
        if y is None:
            # A conditional net called without labels is a caller bug, not a user mistake.
            raise ValueError("this model is conditional: pass y, the (N,) int64 class labels "
                             "or (N, K) condition rows")
        if self.multi_label:
            if y.dim() != 2 or y.shape[1] != self.n_classes:
                raise ValueError(f"condition rows must have shape (N, {self.n_classes}), "
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


# ---------------------------------------------------------------------------------------------
# Dropout
# ---------------------------------------------------------------------------------------------
# torch's CPU dropout draws its mask with ``bernoulli_``, which costs ~13 ns per element on a
# 2-core AVX2 box (9 ms for a 1024x512 activation, more than the 1024x512x512 matmul before it).
# The mask below comes from ``random_`` on int64 (the same mt19937 generator, ~2 ns per 32 random
# bits), compared as 32-bit integers against round(p * 2**32): every element is kept
# independently with probability 1 - p to within 2**-33 (finer than torch's own CUDA kernel,
# which compares a float32 uniform against p). The compare and the scale run in place on the
# random words, so the forward is: one RNG pass, two in-place integer passes, one multiply.

_TWO_32 = 2 ** 32
_FLOAT32_BITS = struct.Struct("<f")
_INT32_BITS = struct.Struct("<i")
# p -> (int32 keep threshold, int32 bit pattern of float32(1 / (1 - p))) as 0-dim tensors, or
# None when the threshold does not fit. 0-dim tensors, not Python ints: an in-place op with a
# Python scalar wraps it in a tensor first, ~4 us a call, as much as the op on a 64x512 batch.
_CONSTANTS: dict[float, Optional[tuple[torch.Tensor, torch.Tensor]]] = {}


def _float32_bits(value: float) -> int:
    """The int32 whose bit pattern is the float32 nearest to ``value``."""
    return _INT32_BITS.unpack(_FLOAT32_BITS.pack(value))[0]


def _keep_constants(p: float) -> Optional[tuple[torch.Tensor, torch.Tensor]]:
    """For 0 < p < 1: int32 threshold t with P(uniform int32 >= t) = 1 - p (to 2**-33), and the
    int32 bits of float32(1 / (1 - p)); None when p is so close to 1 that round(p * 2**32)
    does not fit in an int32 (torch's own kernel is used then)."""
    if p not in _CONSTANTS:
        t = int(round(p * _TWO_32)) - 2 ** 31
        _CONSTANTS[p] = None if t >= 2 ** 31 else (
            torch.tensor(t, dtype=torch.int32, device="cpu"),
            torch.tensor(_float32_bits(1.0 / (1.0 - p)), dtype=torch.int32, device="cpu"))
    return _CONSTANTS[p]


def _random_int32(x: torch.Tensor) -> torch.Tensor:
    """x.numel() uniform int32 words from torch's default CPU generator, laid out like x.

    Drawn 64 bits at a time (``random_`` over the full int64 range), which is ~1.7x cheaper per
    bit than int32 or float draws. Contiguous and channels_last x only (see :func:`fast_dropout`).
    """
    n = x.numel()
    words = torch.empty((n + 1) // 2, dtype=torch.int64, device=x.device)
    words = words.random_(-2 ** 63, None).view(torch.int32)
    if n % 2:
        words = words[:n]
    if x.is_contiguous():
        return words.view_as(x)
    return words.as_strided(x.shape, x.stride())  # channels_last: same dense storage, permuted


def _keep_mask(x: torch.Tensor, p: float, constants: tuple[torch.Tensor, torch.Tensor]
               ) -> tuple[torch.Tensor, Optional[float]]:
    """The dropout multiplier for x and the scale still to apply after multiplying by it.

    float32 x: a float32 mask holding 0 or float32(1 / (1 - p)), built in place on the random
    words (integer compare, then integer multiply by the bit pattern of the scale); nothing left
    to apply. Other dtypes (float64, bf16, fp16): a 0/1 mask in x's dtype, and the scale, which
    the caller applies with ``mul_`` so a bf16/fp16 survivor is rounded once from x * scale
    (a mask holding a bf16-rounded scale would be off by up to 0.4%).
    """
    threshold, scale_bits = constants
    keep = _random_int32(x).ge_(threshold)          # int32 1 (keep) / 0 (drop), in place
    if x.dtype == torch.float32:
        return keep.mul_(scale_bits).view(torch.float32), None
    return keep.to(x.dtype), 1.0 / (1.0 - p)


def fast_dropout(x: torch.Tensor, p: float, training: bool = True, inplace: bool = False
                 ) -> torch.Tensor:
    """``F.dropout`` with the same semantics, several times faster on the CPU.

    In training mode every element is zeroed independently with probability ``p`` and the
    survivors are multiplied by ``1 / (1 - p)``; the gradient is ``grad * mask / (1 - p)``. In
    eval mode, or with ``p == 0`` or an empty x, x itself is returned (as torch does). The mask
    comes from torch's default generator, so ``torch.manual_seed`` fixes it — but the random
    stream differs from ``F.dropout``'s, so the masks themselves differ from torch's.

    On CUDA (where torch's fused kernel is already fast), under ``torch.compile`` (inductor
    fuses its own), for in-place dropout, non-float or non-dense tensors and for p == 1, this
    simply calls ``F.dropout``.

    Raises:
        ValueError: p outside [0, 1], as ``F.dropout`` does.
    """
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0 or x.numel() == 0:
        return x
    constants = _keep_constants(p) if p < 1.0 else None
    if (constants is None or inplace or x.device.type != "cpu" or not x.is_floating_point()
            or not (x.is_contiguous() or x.is_contiguous(memory_format=torch.channels_last))
            or torch.compiler.is_compiling()):
        return F.dropout(x, p, training, inplace)
    # A plain product with a constant mask: autograd's own MulBackward saves only the mask and
    # returns grad * mask (grad * mask * scale for the other dtypes), in C++ and twice
    # differentiable; a custom autograd.Function costs tens of us more per call (Python apply
    # and backward).
    mask, scale = _keep_mask(x, p, constants)
    out = x * mask
    return out if scale is None else out.mul_(scale)


class FastDropout(nn.Dropout):
    """Drop-in ``nn.Dropout`` (same ``p``/``inplace`` attributes, no state, same validation)
    whose CPU forward is :func:`fast_dropout`. It subclasses ``nn.Dropout``, so
    ``isinstance(m, nn.Dropout)`` holds; :func:`stock_dropout` swaps it back to a stock
    ``nn.Dropout`` for the "typical implementation" comparison."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fast_dropout(x, self.p, self.training, self.inplace)


def dropout(p: float) -> nn.Module:
    """``FastDropout(p)``, or an identity when ``p == 0`` so summaries stay short."""
    if not 0.0 <= p < 1.0:
        raise ConfigError(f"dropout probability {p} is outside [0, 1); use e.g. 0.25")
    return FastDropout(p) if p > 0 else nn.Identity()


def stock_dropout(net: nn.Module) -> nn.Module:
    """Replace every :class:`FastDropout` inside ``net`` by a stock ``nn.Dropout``, in place: the
    layers a training loop written outside ganforge has (``ganforge.api.build_networks(...,
    plain=True)``). Names, ``p``, ``inplace`` and each layer's train/eval flag are kept; dropout
    has no parameters or state, so the state dict is unchanged.

    Returns:
        ``net`` itself, for chaining.
    """
    for parent in list(net.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, FastDropout):
                stock = nn.Dropout(child.p, child.inplace)
                stock.train(child.training)
                setattr(parent, name, stock)
    return net


class MinibatchStd(nn.Module):
    """A layer that also sees how much the samples of a small group differ (ProGAN's minibatch
    standard deviation, Karras et al. 2018, §3).

    The batch is cut into groups of ``group`` consecutive samples; within a group, the standard
    deviation of every input feature across the group's samples is averaged into one number s.
    ProGAN appends s to the layer's input as one more constant feature (vectors) or channel
    (maps); here the wrapped ``layer`` sees its input unchanged and ``weight * s`` is added to its
    output, one learnt weight per output feature or channel. For a linear layer that is exactly
    the appended feature (its weight column is ``weight``); for a conv it is the appended constant
    channel up to the zero padding at the borders. It saves copying the input into a wider tensor
    and the odd widths that follow (513 inputs, 17 channels: 0-15% slower kernels on a 2-core CPU).

    A G that draws nearly one sample per class makes s small on fakes and ordinary on reals,
    which D can then see; a per-sample D cannot. The group shrinks to ``gcd(group, N)`` when N
    is not a multiple of it, so every group is whole (N = 1 reads the floor 1e-4). The module
    couples the samples of a batch, as BatchNorm does, so D's real and fake batches are scored in
    separate forwards (``couples_samples``).

    Args:
        layer: the wrapped ``nn.Linear`` or ``nn.Conv2d``.
        out_features: its output features or channels.
        group: samples per group (ProGAN / StyleGAN2: 4); at least 2.

    Shapes:
        as ``layer``: (N, F) -> (N, out_features) or (N, C, H, W) -> (N, out_features, H', W').
    """

    couples_samples = True

    def __init__(self, layer: nn.Module, out_features: int, group: int = 4) -> None:
        super().__init__()
        if group < 2:
            raise ConfigError(f"minibatch-std group size {group} is below 2; use e.g. 4 "
                              "(or 0 in model.d_mbstd for no minibatch-std layer)")
        self.layer = layer
        self.group = int(group)
        # N(0, 0.02) as the normal02 init gives the weight column of an appended feature.
        self.weight = nn.Parameter(torch.randn(out_features) * 0.02)

    def stat(self, x: torch.Tensor) -> torch.Tensor:
        """(N, ...) -> (N,): each sample's group's mean standard deviation (in fp32)."""
        n = x.shape[0]
        g = math.gcd(self.group, n)
        grouped = x.float().reshape(n // g, g, -1)  # consecutive samples share a group
        centred = grouped - grouped.mean(dim=1, keepdim=True)
        # Written out rather than Tensor.var, whose backward is several times slower on the CPU;
        # +1e-8 inside the root keeps the gradient finite where a group's samples agree.
        std = (centred.square().mean(dim=1) + 1e-8).sqrt().mean(dim=1)  # (N/g,)
        return std.view(-1, 1).expand(-1, g).reshape(n)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.layer(x)
        s = self.stat(x).to(out.dtype)
        tail = (1,) * (out.dim() - 2)
        return out + s.view(-1, 1, *tail) * self.weight.to(out.dtype).view(1, -1, *tail)

    def extra_repr(self) -> str:
        return f"group={self.group}"


def minibatch_std(layer: nn.Module, out_features: int, group: int) -> nn.Module:
    """``layer`` wrapped in :class:`MinibatchStd`, or ``layer`` itself for ``group == 0``."""
    return MinibatchStd(layer, out_features, group) if group else layer


def flat_size(shape: Sequence[int]) -> int:
    """Number of values in one sample of ``shape``: (C, H, W) -> C*H*W, (D,) -> D."""
    return int(math.prod(shape))


def as_shape(shape: Sequence[int]) -> tuple[int, ...]:
    """Normalise a stored shape (a JSON list after a checkpoint round trip) to a tuple of ints."""
    return tuple(int(s) for s in shape)
