"""CelebA the way a typical training script reads it: one JPEG decoded per sample, every epoch.

The DCGAN tutorial's CelebA loader (``torchvision.datasets.ImageFolder`` or ``CelebA`` with
``Compose([CenterCrop, Resize, ToTensor, Normalize])`` and a ``DataLoader``) opens, decodes, crops
and resizes every face each time it is drawn. :func:`use_jpeg_faces` puts that data path into a
:class:`baseline.BaselineGAN`, so the speed benchmark sets ganforge's decoded-once faces against
it on the same nets (``benchmarks/speed.py``, real CelebA only).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

CROP = 140  # the central square of the 178 x 218 aligned faces, as ganforge's celeba keeps


class JPEGFaces(Dataset):
    """Aligned CelebA faces read from their JPEG files, one decode per item.

    Args:
        root: data root holding ``celeba/img_align_celeba/*.jpg``.
        size: output side (e.g. 64 or 32).
        limit: keep only the first ``limit`` files (sorted by name).
    """

    def __init__(self, root: Path, size: int, limit: Optional[int] = None) -> None:
        folder = Path(root) / "celeba" / "img_align_celeba"
        self.files = sorted(folder.glob("*.jpg"))[:limit]
        if not self.files:
            raise FileNotFoundError(f"no CelebA JPEGs in '{folder}'")
        self.transform = transforms.Compose([
            transforms.CenterCrop(CROP), transforms.Resize(size), transforms.ToTensor(),
            transforms.Normalize([0.5] * 3, [0.5] * 3)])

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        with Image.open(self.files[index]) as img:
            return self.transform(img.convert("RGB")), 0


def use_jpeg_faces(loop: Any, root: Path, size: int, limit: Optional[int] = None) -> Any:
    """Make ``loop`` (a ``BaselineGAN``) draw its real batches from :class:`JPEGFaces`, through
    a ``DataLoader`` like its own (shuffled, last partial batch dropped, no workers).

    Returns:
        ``loop``, for chaining.
    """
    loop.dataset = JPEGFaces(root, size, limit)
    loop.loader = DataLoader(loop.dataset, batch_size=loop.batch_size, shuffle=True,
                             drop_last=True, num_workers=0)
    loop._it = iter(loop.loader)
    return loop
