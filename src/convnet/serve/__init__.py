"""`convnet serve`: runs behind a web page and a JSON API (the `serve` extra: FastAPI and
uvicorn). At the level of `explain` and `export`: it uses runs and their one inference
path, and onnxruntime through `export` where that backend is faster.
"""

from convnet.serve.models import load_served, serve

__all__ = ["load_served", "serve"]
