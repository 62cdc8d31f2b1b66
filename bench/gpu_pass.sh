#!/usr/bin/env bash
# Issue 38, the GPU pass: every step in order, logs and tables under $OUT. Each step has
# a time cap; the caps add up to 9 minutes (540 s) beyond the installs (and 30 s to build
# the photo folder of step 7).
# Prepared on the CPU (bench/gpu_carry.sh builds the carry); never yet run on a GPU.
#   run(command="bash bench/gpu_pass.sh", carry=["gpu_carry"], timeout_s=560)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu-pass}
mkdir -p "$OUT"
exec > >(tee "$OUT/log.txt") 2>&1
PY=python3
step() { echo; echo "=== $1 ($(date +%T))"; }

step "0. the machine"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
$PY -c "import torch, sys; print(sys.version.split()[0], torch.__version__, torch.cuda.get_device_name())"

step "1. install convnet and what the image lacks (no index there)"
$PY -m pip install -q --no-index --no-deps gpu_carry/wheels/*.whl
$PY -m pip install -q --no-index --no-deps --no-build-isolation -e . || exit 1
export PYTHONPATH="$PWD/gpu_carry/python:$PWD/tests${PYTHONPATH:+:$PYTHONPATH}"
export CONVNET_CACHE=/tmp/convnet-cache
mkdir -p /tmp/cifar && tar xzf gpu_carry/cifar10-jpg.tar.gz -C /tmp/cifar
CIFAR=$(find /tmp/cifar -maxdepth 3 -type d -name train | head -1 | xargs dirname)
echo "CIFAR-10 at $CIFAR"

step "2. the GPU tests, with counts"
timeout 75 $PY -m pytest -q -p no:cacheprovider -o addopts="" tests/test_on_device.py \
    --junitxml="$OUT/device-tests.xml" | tail -5

step "3. the record: cifar-fast against airbench94, 5 seeds each"
timeout 150 $PY bench/gpu_record.py --data "$CIFAR" --seeds 5 --out "$OUT/record.jsonl"

step "4. the auto choices on the GPU: digits default, cifar-fast (one seed each)"
for choice in "--compile off --precision fp32" "--compile off --precision bf16" \
              "--compile on --precision bf16"; do
    timeout 20 $PY -m convnet train --device cuda $choice --out "$OUT/digits $choice" \
        --no-report | tail -1
done
for choice in "--compile off" "--compile on"; do
    timeout 45 $PY -m convnet train --device cuda --data "$CIFAR" --recipe cifar-fast \
        $choice --out "$OUT/cifar $choice" --no-report | tail -1
done

step "5. NCCL: torchrun with one process against plain --device cuda"
timeout 25 $PY -m torch.distributed.run --standalone --nproc-per-node 1 -m convnet -- \
    train --device cuda --out "$OUT/nccl" --no-report | tail -1
timeout 25 $PY -m convnet train --device cuda --out "$OUT/plain" --no-report | tail -1

step "6. fine-tuning images/s on the GPU: convnet against a plain PyTorch loop"
CONVNET_CIFAR_JPG="$PWD/gpu_carry/cifar10-jpg.tar.gz" timeout 55 \
    $PY bench/finetune_speed.py --device cuda --only-finetune --rounds 2 2>&1 | tail -5

step "7. a photo folder with no options on the GPU: the network, size and frozen layers chosen"
PHOTOS=$(CONVNET_CIFAR_JPG="$PWD/gpu_carry/cifar10-jpg.tar.gz" timeout 30 $PY -c "import sys; \
sys.path.insert(0, 'bench'); from pathlib import Path; from time_to_accuracy import FOLDERS; \
from zoo_data import materialize; print(materialize(FOLDERS['six'], Path('/tmp/zoo')))")
began=$(date +%s.%N)
timeout 60 $PY -m convnet train --device cuda --data "$PHOTOS" --out "$OUT/photos" \
    --no-report 2>&1 | grep -E "^note: the plan|Plan:|best epoch"
echo "wall $($PY -c "import time; print(f'{time.time() - $began:.1f}')") s (start-up," \
    "decoding and planning included)"

step "done"
ls "$OUT"
