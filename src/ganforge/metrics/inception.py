"""The standard FID Inception-v3 extractor (``inception``), through torch-fidelity.

The network is torch-fidelity's ``FeatureExtractorInceptionV3``: the TensorFlow 2015-12-05
Inception graph that FID, KID and IS were defined with, ported to PyTorch (torchmetrics wraps the
same class). It resizes inputs to 299x299 with TensorFlow 1.x's bilinear interpolation, so its
numbers are comparable with the published ones.

Weights: ganforge loads them itself, with ``torch.load(..., weights_only=True)``, because
torch-fidelity unpickles a local file with ``weights_only=False``, which could run code from it.
They are looked for, in order, at an explicit path, at ``$GANFORGE_INCEPTION_WEIGHTS``, and in
torch's hub cache (where torch-fidelity, torchmetrics and pytorch-fid downloads land); when absent
they are downloaded into that cache. Offline without them, the error says which file to put where.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import torch

from ganforge.fileio import sha256_file
from ganforge.errors import GanforgeError
from ganforge.metrics.base import EXTRACTORS, FeatureExtractor

WEIGHTS_ENV = "GANFORGE_INCEPTION_WEIGHTS"
# torch-fidelity's copy of the weights, and the same weights under pytorch-fid's file name.
FILE_NAMES = ("weights-inception-2015-12-05-6726825d.pth", "pt_inception-2015-12-05-6726825d.pth")
URL = ("https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
       "weights-inception-2015-12-05-6726825d.pth")
# SHA-256 of torch-fidelity's file; torch hub names files "<name>-<first 8 hex of sha256>.pth".
SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
HASH_PREFIX = SHA256[:8]
FEATURES = ("2048", "logits_unbiased")  # pool3 features; logits without bias, as the IS paper
BATCH = 64  # images per forward pass: bounds the memory of the 299x299 activations


def hub_folder() -> Path:
    """torch hub's checkpoint cache (``$TORCH_HOME/hub/checkpoints``), where libraries download."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def missing_message(reason: str = "") -> str:
    """The one-line 'weights missing' error text: the file, where it goes, the env var, the URL."""
    because = f" ({reason})" if reason else ""
    return (f"the FID Inception-v3 weights are not available{because}: download {URL} (file "
            f"{FILE_NAMES[0]}, also published by pytorch-fid as {FILE_NAMES[1]}) into "
            f"'{hub_folder()}' or anywhere and set {WEIGHTS_ENV}=PATH, or use a domain evaluator "
            "(ganforge train-evaluator --dataset mnist)")


def find_weights(path: Optional[str | os.PathLike[str]] = None) -> Optional[Path]:
    """The weights file to use: ``path``, else ``$GANFORGE_INCEPTION_WEIGHTS``, else a file in
    the hub cache; None when none is there. A given path that does not exist is an error."""
    explicit = path if path is not None else os.environ.get(WEIGHTS_ENV, "").strip() or None
    if explicit is not None:
        p = Path(explicit).expanduser()
        if not p.is_file():
            source = "the given path" if path is not None else WEIGHTS_ENV
            raise GanforgeError(f"Inception weights file '{p}' ({source}) does not exist; "
                                f"download {URL} there or fix the path")
        return p
    for name in FILE_NAMES:
        if (hub_folder() / name).is_file():
            return hub_folder() / name
    return None


def download_weights() -> Path:
    """Fetch torch-fidelity's weights into the hub cache, verifying their hash prefix as torch
    hub does (``check_hash``). Raises whatever the download raises (offline: URLError)."""
    dest = hub_folder() / FILE_NAMES[0]
    dest.parent.mkdir(parents=True, exist_ok=True)
    torch.hub.download_url_to_file(URL, str(dest), hash_prefix=HASH_PREFIX, progress=False)
    return dest


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    """State dict from a ``.pth`` file, unpickled with ``weights_only=True`` (tensors and
    containers only; a file that wants to run code is refused)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means "not plain weights"
        first = str(err).strip().splitlines()[0][:120] if str(err).strip() else ""
        raise GanforgeError(f"'{path}' is not a plain-tensor Inception weights file "
                            f"({type(err).__name__}: {first}); download it again from {URL}"
                            ) from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise GanforgeError(f"'{path}' does not hold a state dict of tensors; download it again "
                            f"from {URL}")
    return state


@contextlib.contextmanager
def _library_reads(state: dict[str, torch.Tensor]) -> Iterator[None]:
    """While active, torch-fidelity's network takes ``state`` as its downloaded weights.

    torch-fidelity builds its layers and loads weights in one constructor, either from the
    network or by unpickling a local file unsafely; handing it the state dict we loaded safely
    keeps its (exact) architecture without either.
    """
    import torch_fidelity.feature_extractor_inceptionv3 as tfi

    original = tfi.load_state_dict_from_url
    tfi.load_state_dict_from_url = lambda *args, **kwargs: state
    try:
        yield
    finally:
        tfi.load_state_dict_from_url = original


def build_network(state: dict[str, torch.Tensor]) -> torch.nn.Module:
    """torch-fidelity's Inception-v3 with ``state`` loaded: uint8 (N, 3, H, W) in, a tuple
    (features (N, 2048), unbiased logits (N, 1008)) out."""
    try:
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    except ImportError:
        raise GanforgeError("the 'inception' extractor needs torch-fidelity: pip install "
                            "torch-fidelity, or use a domain evaluator (ganforge "
                            "train-evaluator --dataset mnist)") from None
    with _library_reads(state):
        try:
            return FeatureExtractorInceptionV3("inception-v3-compat", list(FEATURES))
        except RuntimeError as err:  # load_state_dict: missing/unexpected keys or shapes
            raise GanforgeError("the Inception weights do not fit torch-fidelity's network "
                                f"({str(err).splitlines()[0][:100]}); download them from "
                                f"{URL}") from None



class InceptionV3(FeatureExtractor):
    """FID Inception-v3: 2048-d pool features and 1008 unbiased logits (for IS).

    Args:
        weights: a weights file; None -> ``$GANFORGE_INCEPTION_WEIGHTS`` or the hub cache.
        device: where the network runs; outputs come back on the CPU.
        download: fetch the weights into the hub cache when they are not found.
        network: a ready network (tests); skips finding and loading weights.

    ``name`` is "inception" for the standard weights (SHA-256 prefix 6726825d) and
    "inception-custom" for any other file, so metric names never pass one off as the other.
    """

    input_shape = (3, 299, 299)
    resize_method = "bilinear-tf1x"  # torch-fidelity's interpolate_bilinear_2d_like_tensorflow1x
    n_classes = 1008
    feature_dim = 2048

    def __init__(self, weights: Optional[str | os.PathLike[str]] = None,
                 device: str | torch.device = "cpu", download: bool = True,
                 network: Optional[Callable[[torch.Tensor], Any]] = None) -> None:
        self.device = torch.device(device)
        if network is not None:
            self.network, self.checksum, self.weights_path = network, "none", None
        else:
            path = find_weights(weights)
            if path is None:
                if not download:
                    raise GanforgeError(missing_message("downloading is off"))
                try:
                    path = download_weights()
                except Exception as err:  # noqa: BLE001 - offline, proxy, hash: same remedy
                    raise GanforgeError(missing_message(
                        f"download failed: {type(err).__name__}")) from None
            self.weights_path = path
            self.checksum = sha256_file(path)
            self.network = build_network(load_weights(path)).to(self.device)
        self.name = "inception" if self.checksum.startswith(HASH_PREFIX) else "inception-custom"

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) float in [-1, 1] (or uint8), C in {1, 3} -> (N, 3, H, W) uint8 on the
        device. Quantising to uint8 as an image file would; the network resizes to 299."""
        x = images.to(self.device)
        if x.dtype != torch.uint8:
            x = x.float().add(1).mul(127.5).round_().clamp_(0, 255).to(torch.uint8)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)  # gray repeated, as gray files open as RGB
        elif x.shape[1] != 3:
            raise GanforgeError(f"the Inception extractor takes 1- or 3-channel images, got "
                                f"{x.shape[1]} channels")
        return x.contiguous()

    batch_size = BATCH

    def forward(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pool features (B, 2048) and unbiased logits (B, 1008) of one prepared batch."""
        return self.network(batch)

    def provenance(self) -> dict[str, Any]:
        return {**super().provenance(), "extractor_impl": "torch-fidelity "
                f"FeatureExtractorInceptionV3 {_library_version()}", "extractor_features": "2048",
                "extractor_logits": "logits_unbiased"}


def _library_version() -> str:
    try:
        from importlib.metadata import version

        return version("torch-fidelity")
    except Exception:  # noqa: BLE001 - only for the provenance text
        return "unknown"


@EXTRACTORS.register("inception")
def inception(device: str | torch.device = "cpu", weights: Optional[str] = None,
              download: bool = True) -> InceptionV3:
    """FID Inception-v3 (torch-fidelity), 2048-d features + 1008 logits; needs its weights."""
    return InceptionV3(weights=weights, device=device, download=download)
