#!/usr/bin/env bash
# Reproduce every recorded result of benchmarks/runtime (2-core CPU, ~30 min; vit_b dominates).
# Measurements hold /tmp/edgesam-bench.lock so two benchmarks never run at once.
set -euo pipefail
cd "$(dirname "$0")/../.."
WORK=${WORK:-/tmp/edgesam-bench-runtime}
DATA=${EDGESAM_MAGNETIC_TILE:-../shared/data/magnetic-tile}
PY=.venv/bin/python
RES=benchmarks/runtime/results

$PY benchmarks/runtime/make_bundles.py vit_t --work "$WORK" --precisions fp32,fp16,int8 --calib "$DATA/free/images"
$PY benchmarks/runtime/make_bundles.py vit_b --work "$WORK" --precisions fp32   # int8 of vit_b: see README

# Line configuration: single-threaded BLAS for host post-processing (see README).
export OPENBLAS_NUM_THREADS=1
flock /tmp/edgesam-bench.lock .venv/bin/edgesam bench "$WORK/vit_t_256/bundle" --data "$DATA" \
    --reference "$WORK/vit_t_256/model.pth" --max-images 16 --prompt box --out $RES/vit_t_magnetic_tile
flock /tmp/edgesam-bench.lock .venv/bin/edgesam bench "$WORK/vit_b_1024/bundle" --data "$DATA" \
    --reference "$WORK/vit_b_1024/model.pth" --max-images 3 --prompt box --out $RES/vit_b_magnetic_tile
flock /tmp/edgesam-bench.lock $PY benchmarks/runtime/decoder_latency.py "$WORK/vit_t_256/bundle" --out $RES/decoder_vit_t
flock /tmp/edgesam-bench.lock $PY benchmarks/runtime/decoder_latency.py "$WORK/vit_b_1024/bundle" --repeats 3 --out $RES/decoder_vit_b
# GPU only (exits 2 without CUDA):
flock /tmp/edgesam-bench.lock $PY benchmarks/runtime/torch_fast_gpu.py --out $RES/torch_fast_gpu || true
