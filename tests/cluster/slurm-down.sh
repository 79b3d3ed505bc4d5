#!/usr/bin/env bash
# Stops the test cluster's daemons started by slurm-up.sh: SLURM, slurmdbd, munge, MariaDB.
for d in slurmd slurmctld slurmdbd munged; do
  pid=$(pgrep -x "$d" || true)
  [ -n "$pid" ] && kill $pid
done
command -v mariadb-admin >/dev/null && mariadb-admin shutdown >/dev/null 2>&1
exit 0
