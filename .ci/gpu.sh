#!/usr/bin/env bash
# The GPU check, on a GPU machine with no network, in one call (under 9 minutes with the default budget): the step
# profile and the data-path benchmark (workers vs faces on the device vs a plain loop), then experiment=vgg_khaireddin
# trainer=gpu on the device path for as many of its 300 epochs as fit in a time budget, its epochs per minute and val
# curve, and PublicTest once, with the TTA chosen on val (docs/results.md).
#   .ci/gpu.sh pack     here, online: into .gpu/ (git-ignored) the wheels that machine's python3 lacks (it has torch,
#                       lightning, torchmetrics, tensorboard, pandas, opencv) and FER-2013's image folders as one .tgz
#                       ($FER_DATA_ROOT, else ../shared/fer2013). The JPEGs, not outputs/cache: they are 50 MB, the
#                       cache's .npz 92 (68 zipped), and the device tool carries 64 MiB with the repo.
#   .ci/gpu.sh run [MINUTES [OVERRIDE ...]]
#                       there, in the repo root with .gpu/ in it: install the wheels under /tmp/site, unpack the
#                       faces, bench (profile, paths: bench.txt), train for MINUTES (default 5: trainer.max_time) with
#                       test=false and any further overrides (data.ten_crop_train=true: ten-crop training), then
#                       eval eval.tta=auto on test (the TTA picked on val), and write gpu.txt, bench.txt, train.log,
#                       eval.log and val_curve.png/.csv into $OUT (default outputs/gpu). The run folder, with its
#                       checkpoints, stays in /tmp/gpu_run.
set -euo pipefail

PACK=.gpu
WHEELS=(hydra-core==1.3.8 omegaconf==2.3.1 antlr4-python3-runtime==4.9.3 albumentations==2.0.8 albucore==0.0.24
  pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5 typing-extensions==4.16.0
  simsimd==6.5.16 stringzilla==5.3.2 captum==0.9.0)
PYTHON_VERSION=${PYTHON_VERSION:-3.12}   # the GPU machine's python3 (another only to try the script elsewhere)
PLATFORMS=(manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64)

say() { echo "gpu: $*"; }

pack() {
  local data=${FER_DATA_ROOT:-../shared/fer2013} python=${PYTHON:-python3}
  [[ -d $data/train ]] || { echo "gpu: $data has no train/ folder: set FER_DATA_ROOT to FER-2013's image folders" >&2; exit 1; }
  rm -rf "$PACK.tmp" && mkdir -p "$PACK.tmp/whl"
  local platform_args=() spec
  for platform in "${PLATFORMS[@]}"; do platform_args+=(--platform "$platform"); done
  for spec in "${WHEELS[@]}"; do
    if [[ $spec == antlr4-python3-runtime==* ]]; then   # published as a source archive only: built here (pure Python)
      "$python" -m pip wheel -q --no-deps -w "$PACK.tmp/whl" "$spec"
    else
      "$python" -m pip download -q --no-deps --only-binary=:all: --implementation cp \
        --python-version "$PYTHON_VERSION" "${platform_args[@]}" -d "$PACK.tmp/whl" "$spec"
    fi
  done
  tar czf "$PACK.tmp/fer2013.tgz" -C "$(dirname "$data")" "$(basename "$data")/train" "$(basename "$data")/test"
  rm -rf "$PACK" && mv "$PACK.tmp" "$PACK"
  say "packed $(du -sh "$PACK" | cut -f1) into $PACK/: carry it (the device tool's limit is 64 MiB with the repo)"
}

run() {
  local minutes=${1:-5} out=${OUT:-outputs/gpu} site=/tmp/site data=/tmp/gpu_data run=/tmp/gpu_run
  [[ -f $PACK/fer2013.tgz ]] || { echo "gpu: no $PACK/fer2013.tgz here: run .ci/gpu.sh pack first, and carry $PACK" >&2; exit 1; }
  mkdir -p "$out" "$data"
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" "$PACK"/whl/*.whl
  export PYTHONPATH=$site${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
  tar xzf "$PACK/fer2013.tgz" -C "$data"
  local gpu
  gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1 || true)
  {
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || echo "no nvidia-smi"
    python3 -c "import torch, lightning; print('torch', torch.__version__, 'lightning', lightning.__version__)"
    echo "cpu cores: $(nproc)"
  } | tee "$out/gpu.txt"
  local root="$data/$(ls "$data")" start=$SECONDS max_time
  python3 -m fer_lightning.bench "data.root=$root" 'sections=[profile,paths]' 'models=[cnn,resnet50]' \
    'train_overrides=[trainer=gpu]' data.num_workers=8 steps=40 repeats=1 hydra.run.dir=/tmp/gpu_bench 2>&1 \
    | tee "$out/bench.txt"
  say "bench: $((SECONDS - start)) s" | tee -a "$out/gpu.txt"
  printf -v max_time '00:00:%02d:00' "$minutes"   # Lightning's DD:HH:MM:SS
  start=$SECONDS
  python3 -m fer_lightning.train experiment=vgg_khaireddin trainer=gpu "data.root=$root" test=false \
    "trainer.max_time='$max_time'" data.on_device=true callbacks.last_checkpoint.every_minutes=2 "hydra.run.dir=$run" \
    "${@:2}" 2>&1 | tee "$out/train.log"
  say "train command: $((SECONDS - start)) s wall, start-up and data loading included" | tee -a "$out/gpu.txt"
  python3 -m fer_lightning.eval "ckpt_path=$(python3 -c "import json; print(json.load(open('$run/metrics.json'))['best_checkpoint'])")" \
    "data.root=$root" eval.tta=auto hydra.run.dir=/tmp/gpu_eval 2>&1 | tee "$out/eval.log"
  python3 -m fer_lightning.curves "runs=[$run]" "labels=['vgg_khaireddin, $gpu']" "file=$out/val_curve.png" \
    hydra.run.dir=/tmp/gpu_curves 2>&1 | tee -a "$out/gpu.txt"
}

case ${1:-} in
  pack) pack ;;
  run) shift; run "$@" ;;
  *) echo "usage: .ci/gpu.sh pack | run [MINUTES [OVERRIDE ...]]" >&2; exit 2 ;;
esac
