#!/bin/bash
# Every check that needs a GPU, as one command: the CUDA tests, the GPU benchmarks and a sweep
# with --device cuda (once on one worker, once on two: the points must be equal). Each step
# has a time limit (9 minutes in all), so one that hangs costs its limit only; logs go to $OUT
# (default /tmp/memsim-gpu), their tails to stdout, and the script exits non-zero when a step
# failed or the two sweeps differ. Data: CIFAR-10 and vgg_A.pt as memsim finds them
# ($MEMSIM_SHARED or ../shared; a subset of 2,000 test images and 600 training images is
# enough). Figures from an H200: docs/cluster.md, "How fast".
#
#   bash benchmarks/gpu_checks.sh            # PY=python3 OUT=/tmp/memsim-gpu by default
set -u
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/memsim-gpu}
PY=${PY:-python3}
mkdir -p "$OUT"
step() {  # step NAME LIMIT_S CMD...: the output to $OUT/NAME.log, its tail here
  local name=$1 limit=$2
  shift 2
  echo "=== $name (limit ${limit}s) $(date +%T)"
  local start
  start=$(date +%s)
  timeout -k 10 "$limit" "$@" >"$OUT/$name.log" 2>&1
  local rc=$?
  echo "=== $name rc=$rc $(($(date +%s) - start))s"
  tail -n "${TAILN:-20}" "$OUT/$name.log"
  [ "$rc" -eq 0 ] || FAILED="$FAILED $name"
}
FAILED=
nvidia-smi -L 2>/dev/null
$PY -c "import torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda, torch.cuda.get_device_name() if torch.cuda.is_available() else 'NO CUDA DEVICE')"
SWEEP=(configs/cifar/vgg_formats.toml --set 'workloads=["vgg_A"]' --set 'formats=["float32","int8"]'
  --set sweep.images=2000 --set sweep.repeats=2 --set memory.enabled=false --no-progress)
TAILN=30 step tests 240 $PY -m pytest tests/test_gpu.py -m gpu -q -p no:cacheprovider -rfE -n 4 --durations=10
TAILN=30 step protocol 90 $PY benchmarks/protocol.py --device cuda --images 1000 --workers 8 --repeats 6
for workers in 1 2; do
  rm -rf "$OUT/sweep$workers"
  step "sweep$workers" 90 bash -c "time ${PY@Q} -m memsim run ${SWEEP[*]@Q} --device cuda --workers $workers --out ${OUT@Q}/sweep$workers"
done
$PY - "$OUT" <<'PYEOF'
import sys
from pathlib import Path

import pandas as pd

out = Path(sys.argv[1])
tables = [out / f"sweep{w}" / "points.csv" for w in (1, 2)]
if all(t.exists() for t in tables):
    a, b = (pd.read_csv(t).sort_values("point_id").reset_index(drop=True) for t in tables)
    same = a[["point_id", "accuracy"]].equals(b[["point_id", "accuracy"]])
    print(f"sweep: {len(a)} points; 1 worker == 2 workers: {same}")
    sys.exit(0 if same else 1)
print("sweep: a run did not finish (see its log)")
sys.exit(1)
PYEOF
[ $? -eq 0 ] || FAILED="$FAILED sweeps-equal"
TAILN=45 step bitflip 60 $PY benchmarks/bitflip.py --device cuda --coupled --min-time 0.15
echo "=== done $(date +%T); failed:${FAILED:- none}"
[ -z "$FAILED" ]
