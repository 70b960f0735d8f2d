#!/usr/bin/env bash
# The CUDA backend's checks on a real GPU, in one run (issue: a real CUDA backend). Run from the
# repository root on a machine with an NVIDIA GPU and driver; writes logs and JSON to ./cuda-checks
# (and, where $OUT is set, packs them into $OUT/cuda-checks.tgz after every step).
#   .whl/  optional: wheels to install first (pip download ... cffi pydantic cuda-core cuda-bindings)
#          (CuPy is optional: bench_cuda.py measures against cuda.core without it, and CuPy too with it)
# Steps (each bounded, each logged, a failing one does not stop the rest): install, discovery, the
# CUDA tests, the benchmarks (three runs, for a range), the simulated GPU against its real twin,
# the demo on cuda:0 against the CPU, and the whole conformance suite on cuda:0.
set -u
LOGS=$PWD/cuda-checks
mkdir -p "$LOGS"
PY=${PY:-python3}
export PYTHONUNBUFFERED=1 HAL_CACHE_DIR=/tmp/hal-cache
if ls .whl/*.whl >/dev/null 2>&1; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site
fi
step() {  # step NAME SECONDS COMMAND...: run, log to $OUT/NAME.log, report the status
    local name=$1 limit=$2; shift 2
    local t0=$SECONDS
    timeout "$limit" "$@" >"$LOGS/$name.log" 2>&1
    echo "== $name: exit $? in $((SECONDS - t0)) s"
    tail -n 12 "$LOGS/$name.log"
    if [ -n "${OUT:-}" ]; then tar czf "$OUT/cuda-checks.tgz" -C "$LOGS/.." "$(basename "$LOGS")"; fi
}
step install 150 $PY -m pip install --no-deps --no-build-isolation --no-index -e .
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$LOGS/gpu.txt"
step discovery 60 $PY -c "import cuda.core, cuda.bindings, hal; print('cuda.core', cuda.core.__version__, 'cuda.bindings', cuda.bindings.__version__); import hal.kernel.nvrtc as n; print('nvrtc', n.version()); d = hal.device('cuda:0'); print(d.info)"
step tests 60 $PY -m pytest -q -p no:cacheprovider tests/cuda --ignore=tests/cuda/test_host_cuda.py  # the host run is CI's
for run in 1 2 3; do
    step "bench$run" 45 $PY benchmarks/bench_cuda.py --json "$LOGS/bench_cuda_run$run.json"
done
step twin 60 $PY benchmarks/twin_cuda.py --json "$LOGS/twin_cuda.json"
step demo 60 $PY -m hal demo --device cuda:0 --json "$LOGS/demo.json"
step conformance "${CONFORMANCE_S:-240}" $PY -m hal conformance cuda --json "$LOGS/conformance-cuda.json"
