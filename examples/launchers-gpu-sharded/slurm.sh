#!/usr/bin/env bash
# SLURM: one job array per stage of the plan in /shared/exp/self-vs-random-gpu/plan, each stage after the previous
# one succeeded. Add your cluster's sbatch options (--mem, --time, --partition); the experiment directory
# /shared/exp/self-vs-random-gpu must be on shared storage.
#   bash slurm.sh
set -euo pipefail
plan=/shared/exp/self-vs-random-gpu/plan
counts=(18 82 20 1)
prev=""
for k in $(seq 0 3); do
  dep=${prev:+--dependency=afterok:$prev}
  prev=$(sbatch --parsable $dep --array=1-${counts[$k]} --job-name=draftscope-stage-$k \
    --cpus-per-task=2 --gres=gpu:1 --wrap="sed -n \${SLURM_ARRAY_TASK_ID}p $plan/stage-$k.txt | bash")
  echo "stage $k: job $prev (${counts[$k]} tasks)"
done
# Then: draftscope experiment --resume <the experiment directory> checks every output.
