"""Classify an image with a model from `convnet export`, using only onnxruntime, numpy and
Pillow (no torch, no convnet):  python onnx_predict.py runs/digits/model.onnx seven.png"""

import json
import sys

import numpy as np
import onnxruntime
from PIL import Image, ImageOps

session = onnxruntime.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
meta = {k: json.loads(v) for k, v in session.get_modelmeta().custom_metadata_map.items()}
height, width, channels = meta["input_shape"]
image = ImageOps.exif_transpose(Image.open(sys.argv[2]))
if "A" in image.mode or "transparency" in image.info:  # transparent parts on white
    image = Image.alpha_composite(Image.new("RGBA", image.size, "white"), image.convert("RGBA"))
image = image.convert("L" if channels == 1 else "RGB")
if image.size != (width, height):  # centre crop (or letterbox) to the model's size
    fit = ImageOps.fit if meta["preprocess"]["resize"] == "crop" else ImageOps.pad
    image = fit(image, (width, height), Image.Resampling.BILINEAR)
pixels = np.asarray(image, dtype=np.uint8).reshape(1, height, width, channels)
outputs = [output.name for output in session.get_outputs()]
found = dict(zip(outputs, session.run(outputs, {"pixels": pixels})))
probabilities = found["probabilities"][0]
for index in np.argsort(-probabilities)[:3]:
    print(f"{probabilities[index]:.2f} {meta['classes'][index]}")
if "unknown" in found:  # a run with a detector: is the image unlike its training images?
    kept = meta["unknown"]["kept"]
    print(f"{'unknown' if found['unknown'][0] else 'known'} (score "
          f"{found['unknown_score'][0]:.4g}; {kept:.0%} of known images score under "
          f"{meta['unknown']['cut']:.4g})")
