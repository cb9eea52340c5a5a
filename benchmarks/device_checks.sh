#!/usr/bin/env bash
# Everything that needs the GPU machine, as one run of about 8 minutes (device tool:
#   run command="bash benchmarks/device_checks.sh" timeout_s=560).
# It runs from the source tree with the machine's own python3 (torch with CUDA, scikit-learn,
# scipy, statsmodels, click, tabulate, tqdm, safetensors, pytest, pytest-xdist; Ray is absent, so
# its tests skip), and prints, and writes under $OUT when set:
#   1. the test suite on CUDA (`--device cuda`: the shared models train and unlearn on the GPU);
#   2. airnet speed on CIFAR-10-sized data (`--synthetic`: the dataset cannot reach that machine),
#      seconds per model, models per hour for 16 and 64 ensembled vs sequential, bf16 peak fraction;
#   3. the CPU targets of issue #3 on 16 cores: ensemble vs loop, process backend vs local.
set -u
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export UNLEARN_AUDIT_STORE="${TMPDIR:-/tmp}/unlearn-audit-store"
out="${OUT:-${TMPDIR:-/tmp}/unlearn-audit-device}"
mkdir -p "$out"
export UNLEARN_AUDIT_RESULTS_DIR="$out/results"  # the benchmark scripts record their tables here, so they come back
py=python3

step() {  # step NAME SECONDS COMMAND...: run with a time limit, keep its output in $out/NAME.log
  local name=$1 limit=$2
  shift 2
  echo "== $name (limit ${limit}s): $*"
  local start=$SECONDS
  timeout "$limit" "$@" >"$out/$name.log" 2>&1
  echo "   exit $? after $((SECONDS - start))s"
  tail -n 25 "$out/$name.log"
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
$py -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" | tee -a "$out/gpu.txt"
step tests-cuda 240 $py -m pytest -q -x -n 4 -p no:cacheprovider --device cuda tests
step airnet-synthetic 150 $py benchmarks/airnet_cifar10.py --synthetic --counts 16 64 --sequential 4
step ensemble-vs-loop-16-threads 45 $py benchmarks/ensemble_vs_loop.py --threads 16
step process-backend-8-workers 45 $py benchmarks/process_backend.py --workers 8 --models 16
