"""The handler a user would write by hand, for bench/serve_load.py to compare against:
one FastAPI route that decodes the upload, runs the run's network, and replies.

    python bench/naive_server.py RUN PORT
"""

from __future__ import annotations

import sys

import torch
import uvicorn
from fastapi import FastAPI, Request

import convnet
from convnet.axes import to_chw
from convnet.data.preprocess import decode

run = convnet.load(sys.argv[1])
app = FastAPI()


@app.post("/v1/models/{name}/predict")
async def predict(name: str, request: Request) -> dict:
    pixels = decode(await request.body(), run.preprocess)  # (H, W, C) uint8
    with torch.inference_mode():
        [answer] = run.predictor.predict(to_chw(torch.from_numpy(pixels))[None], ["body"])
    return answer.to_dict()  # the same JSON as convnet serve


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
