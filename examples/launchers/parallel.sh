#!/usr/bin/env bash
# GNU parallel over the machines in HOSTS (one `user@host` a line, see `man parallel`), stage
# by stage; every host needs draftscope at the same path and the experiment directory
# /shared/exp/self-vs-random on shared storage. Locally: HOSTS=: (GNU parallel's name for this machine).
#   HOSTS=hosts.txt JOBS=1 bash parallel.sh
set -euo pipefail
plan=/shared/exp/self-vs-random/plan
for k in $(seq 0 2); do
  parallel --halt now,fail=1 -j "${JOBS:-1}" --sshloginfile "${HOSTS:-:}" < "$plan/stage-$k.txt"
done
