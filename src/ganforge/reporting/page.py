"""Self-contained HTML pages: inlined images, a Jinja2 template, one atomic write.

Every picture goes into the page as a ``data:`` URI, and the page carries a Content Security
Policy that allows nothing but inline styles, inline scripts and data-URI images, so a page that
accidentally referenced a file or URL would show it as a blocked load (and fail the browser
test) instead of silently depending on it. The pages' only script counts images that did not
decode after load and writes the count into ``<body data-images-broken>``.
"""

from __future__ import annotations

import base64
import io
import os
import platform
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import numpy as np

from ganforge import fileio

if TYPE_CHECKING:
    from matplotlib.figure import Figure

TEMPLATES = Path(__file__).parent / "templates"
MIME = {".png": "image/png", ".gif": "image/gif", ".webp": "image/webp", ".jpg": "image/jpeg"}


def data_uri(data: bytes, mime: str) -> str:
    """``data:<mime>;base64,...`` for raw file bytes."""
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def file_uri(path: Path) -> str:
    """A data URI of an image file, typed by its suffix."""
    return data_uri(Path(path).read_bytes(), MIME[Path(path).suffix.lower()])


def array_uri(image: np.ndarray) -> str:
    """A PNG data URI of an (H, W, 3) or (H, W) uint8 array."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buffer, format="PNG")
    return data_uri(buffer.getvalue(), "image/png")


def figure_uri(fig: "Figure", dpi: int = 90) -> str:
    """A PNG data URI of a matplotlib figure (lay it out with ``tight_layout`` first)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return data_uri(buffer.getvalue(), "image/png")


def render(template: str, **context: Any) -> str:
    """Render ``templates/<template>`` with autoescaping; a missing variable is an error."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)),
                             autoescape=jinja2.select_autoescape(("html", "j2")),
                             undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True)
    env.filters["num"] = format_number
    return env.get_template(template).render(**context)


def write_page(path: Path, html: str) -> Path:
    """Write the page atomically (a reader sees the old page or the whole new one)."""
    fileio.write_text(path, html)
    return Path(path)


# Below this size, whole numbers and large values print in full rather than as 1.18e+04.
WHOLE_LIMIT = 1e15


def format_number(value: Any, digits: int = 4) -> str:
    """Numbers for tables: ``digits`` significant digits, None as an en dash.

    Integers, and floats that are whole numbers or too large for ``digits`` (a mean of steps,
    images per second), print as whole numbers: a step count reads 11800, never 1.18e+04.
    """
    if value is None:
        return "–"
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        return str(value)
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    value = float(value)
    if value != value:  # NaN
        return "nan"
    if abs(value) < WHOLE_LIMIT and (value.is_integer() or abs(value) >= 10 ** digits):
        return str(int(round(value)))
    return f"{value:.{digits}g}"


def environment(device: Optional[str] = None) -> dict[str, str]:
    """Versions and machine of the current process (the report builder's, or the trainer's)."""
    import torch

    from ganforge.version import __version__

    info = {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "ganforge": __version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "cpu_count": str(os.cpu_count()),
        "torch_threads": str(torch.get_num_threads()),
    }
    if device is not None:
        info["device"] = device
        if device.startswith("cuda") and torch.cuda.is_available():
            info["device_name"] = torch.cuda.get_device_name(torch.device(device))
    return info
