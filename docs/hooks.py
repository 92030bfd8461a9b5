"""MkDocs hook: the pictures of the committed results (``benchmarks/results/**``) join the
site at the same paths, so the Results pages show the grids and plots the benchmarks wrote
without copies under ``docs/`` (a page at ``results/faces.md`` links
``../benchmarks/results/faces/wgan_gp_grid.png``)."""

from __future__ import annotations

from pathlib import Path

from mkdocs.structure.files import File, Files

PICTURES = ("*.png", "*.gif", "*.webp", "*.jpg")


def on_files(files: Files, config) -> Files:
    repo = Path(config["config_file_path"]).resolve().parent
    for pattern in PICTURES:
        for path in sorted((repo / "benchmarks" / "results").rglob(pattern)):
            files.append(File(path.relative_to(repo).as_posix(), src_dir=str(repo),
                              dest_dir=config["site_dir"],
                              use_directory_urls=config["use_directory_urls"]))
    return files
