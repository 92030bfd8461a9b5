#!/usr/bin/env bash
# Everything that needs a CUDA GPU, in one go (about 9 minutes on one H100/H200):
#   1. the CUDA tests (tests/gpu, the aids under autocast among them, and the CUDA cases
#      elsewhere in the suite);
#   2. the throughput benchmark: a few presets in fp32/bf16, and the DCGAN 64x64 toolkit-vs-bare
#      overhead table in fp32, bf16, fp16, bf16+compile and bf16+channels_last;
#   3. a profile of one toolkit step (dcgan-celeba64, bf16), to see where GPU time goes.
# Usage (repository root): bash benchmarks/gpu_check.sh OUT_DIR [PYTHON]
# Runs from a source checkout without installing (PYTHONPATH=src); PYTHON needs torch with CUDA,
# torchvision, safetensors, tqdm, matplotlib, jinja2, scipy, tensorboard and pytest.
set -u
out=${1:?usage: bash benchmarks/gpu_check.sh OUT_DIR [PYTHON]}
py=${2:-python3}
mkdir -p "$out"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  "$py" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda,
torch.cuda.get_device_name(), 'GPUs', torch.cuda.device_count())"; } | tee "$out/gpu.txt"

echo "== CUDA tests"
timeout 240 "$py" -m pytest -q -p no:cacheprovider -rs tests/gpu \
  tests/reporting/test_stats.py::test_add_on_cuda_never_synchronises \
  tests/training/step/test_resume_kill.py::test_cuda_rng_states_round_trip_per_device \
  tests/data/test_data_sampler.py::test_cuda_batches_match_cpu_batches \
  > "$out/tests.log" 2>&1
echo "tests exit $?"; tail -n 25 "$out/tests.log"

echo "== throughput"
timeout 420 "$py" benchmarks/throughput.py --device cuda --out-dir "$out" --timeout 150 \
  --presets dcgan-mnist acgan-mnist wgan-gp-celeba64 r3gan-mnist r3gan-celeba32 \
  --variants fp32 bf16 \
  --overhead-variants fp32 bf16 fp16 bf16+compile bf16+cl \
  --warmup-s 1.5 --window-s 0.8 --windows 5 2>&1 | tee "$out/throughput.log" | tail -n 30

echo "== profile"
timeout 60 "$py" benchmarks/profile_step.py --preset dcgan-celeba64 --device cuda \
  --set train.amp=bf16 > "$out/profile.txt" 2>&1
echo "profile exit $?"; head -n 40 "$out/profile.txt"
