#!/usr/bin/env bash
# Stops the test cluster's daemons started by slurm-up.sh (by their pid files' processes).
for d in slurmd slurmctld munged; do
  pid=$(pgrep -x "$d" || true)
  [ -n "$pid" ] && kill $pid
done
exit 0
