"""Where convnet keeps downloads and decoded datasets: ``$CONVNET_CACHE`` or the platform's
cache folder (``~/.cache/convnet`` on Linux)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    """The cache folder (created), or a sub-folder of it."""
    root = os.environ.get("CONVNET_CACHE")
    if not root:
        import platformdirs

        root = platformdirs.user_cache_dir("convnet", appauthor=False)
    folder = Path(root).expanduser().joinpath(*parts)
    folder.mkdir(parents=True, exist_ok=True)
    return folder
