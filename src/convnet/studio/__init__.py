"""`convnet studio`: train in the browser. A web page and a JSON API over a workspace
folder of datasets, jobs and the runs they make (the `serve` extra). Above `serve`: its
finished models answer through serve's routes.
"""

from __future__ import annotations

from pathlib import Path

from convnet import extras
from convnet.errors import ConvnetError

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def studio(root: str | Path = "studio", host: str = "127.0.0.1", port: int = 8000,
           api_key: str | None = None) -> None:
    """Serve the studio over ``root`` until interrupted.

    Raises:
        ConvnetError: for a host beyond loopback without an API key, or without the extra.
    """
    if host not in LOOPBACK and not api_key:
        raise ConvnetError(f"host={host!r} reaches other machines: the studio trains and "
                           "writes files for whoever calls it, so give an api_key too "
                           "(--api-key or CONVNET_API_KEY), or keep host=127.0.0.1.")
    extras.require("serve", "convnet studio needs FastAPI and uvicorn")
    import uvicorn

    from convnet.studio.app import create_app
    uvicorn.run(create_app(Path(root), api_key), host=host, port=port, log_level="warning",
                timeout_graceful_shutdown=10)
