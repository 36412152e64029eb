#!/usr/bin/env bash
# GNU parallel over the machines in HOSTS (one `user@host` a line, see `man parallel`), stage
# by stage; every host needs draftscope at the same path and the experiment directory
# /shared/exp/self-vs-random-gpu on shared storage. Locally: HOSTS=: (GNU parallel's name for this machine).
# The jobs run on `cuda`: on one machine (HOSTS=:) set JOBS to its GPU count and job slot k
# sees GPU k-1 only. GNU parallel numbers slots across all hosts, so for several GPU hosts
# use slurm.sh or k8s-job.yaml, which give each task a GPU of its own.
#   HOSTS=hosts.txt JOBS=1 bash parallel.sh
set -euo pipefail
plan=/shared/exp/self-vs-random-gpu/plan
for k in $(seq 0 3); do
  parallel --halt now,fail=1 -j "${JOBS:-1}" --sshloginfile "${HOSTS:-:}" 'CUDA_VISIBLE_DEVICES=$(({%} - 1)) sh -c {}' < "$plan/stage-$k.txt"
done
