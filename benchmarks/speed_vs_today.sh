#!/usr/bin/env bash
# The speed figures of benchmarks/RESULTS.md ("Speed, second round") for this checkout beside an older commit's
# ("today's path"), in one run on the same machine, back to back:
#   bash benchmarks/speed_vs_today.sh 3925dc6 [out_dir]
# 1. SWAGAN-512 generator inference, s/image (bench_networks.py g_infer; HEAD in fp32 and bf16, with previews);
# 2. MAGnet's default search, the whole 280 renders at 512 px with ViT-B/32 (bench_search.py --timing-full).
# Each side runs its own code (PYTHONPATH), both with this checkout's virtual environment.
set -euo pipefail
base=${1:?give the commit of the path of today, e.g. 3925dc6}
out=${2:-outputs/speed_vs_today}
here=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-$here/.venv/bin/python}
today=$(mktemp -d)/today
git -C "$here" worktree add --detach "$today" "$base" >/dev/null
trap 'git -C "$here" worktree remove --force "$today"' EXIT
mkdir -p "$out"
out=$(cd "$out" && pwd)

echo "== generator inference: $base (today) then HEAD" >&2
(cd "$today" && PYTHONPATH=. "$python" benchmarks/bench_networks.py --cases g_infer --archs swagan --sizes 512) \
    > "$out/g_infer_today.json"
(cd "$here" && PYTHONPATH=. "$python" benchmarks/bench_networks.py --cases g_infer --archs swagan --sizes 512 \
    --precisions fp32 bf16 --preview) > "$out/g_infer_head.json"

echo "== MAGnet's default search: $base (today) then HEAD" >&2
(cd "$today" && PYTHONPATH=. "$python" benchmarks/bench_search.py --skip-compare --timing --timing-full \
    --timing-full-paths "fp32 full (today)" --out "$out/search_today.json")
(cd "$here" && PYTHONPATH=. "$python" benchmarks/bench_search.py --skip-compare --timing --timing-full \
    --timing-full-paths "bf16 full" "bf16 + screen (default)" --out "$out/search_head.json")
echo "$out"
