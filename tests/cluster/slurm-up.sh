#!/usr/bin/env bash
# Single-node SLURM cluster on this machine for the tests (Debian slurm-wlm + munge, as root),
# with accounting: slurmdbd on a local MariaDB, so `sacct` (the executor plugin's default job
# state query) works. Partitions `cpu` (default) and `gpu` (a fake gres count, no devices).
# Idempotent (restarts the daemons); prints `sinfo` and the SLURM version. Stop: slurm-down.sh.
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "slurm-up: needs root" >&2; exit 2; }
need="slurmctld slurmd slurmdbd munged mariadbd"
missing=$(for c in $need; do command -v "$c" >/dev/null || echo "$c"; done)
if [ -n "$missing" ]; then
  command -v apt-get >/dev/null || { echo "slurm-up: needs apt-get (Debian/Ubuntu) for: $missing" >&2; exit 2; }
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq slurm-wlm slurmdbd munge mariadb-server >/dev/null
  rm -f /usr/sbin/policy-rc.d
fi
HOST=$(hostname -s)
MEM=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
CPUS=$(nproc)
DBPASS=latentmi-test-only
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge /run/mysqld
chown mysql:mysql /run/mysqld

# --- MariaDB (local socket only) and the slurmdbd user
if ! mariadb-admin ping >/dev/null 2>&1; then
  [ -d /var/lib/mysql/mysql ] || mariadb-install-db --user=mysql >/dev/null
  setsid mysqld_safe --skip-networking >/dev/null 2>&1 < /dev/null &
  for _ in $(seq 60); do mariadb-admin ping >/dev/null 2>&1 && break; sleep 1; done
fi
mariadb -e "CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DBPASS';
  GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"

cat > /etc/slurm/slurmdbd.conf <<CONF
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageLoc=slurm_acct_db
StorageUser=slurm
StoragePass=$DBPASS
LogFile=/var/log/slurm/slurmdbd.log
PidFile=/run/slurmdbd.pid
CONF
chmod 600 /etc/slurm/slurmdbd.conf

cat > /etc/slurm/slurm.conf <<CONF
ClusterName=latentmi
SlurmctldHost=$HOST
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
ReturnToService=2
MinJobAge=600
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SlurmUser=root
GresTypes=gpu
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=10
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStorageTRES=gres/gpu
AccountingStoreFlags=job_comment
NodeName=$HOST CPUs=$CPUS RealMemory=$MEM Gres=gpu:1 State=UNKNOWN
PartitionName=cpu Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=$HOST MaxTime=INFINITE State=UP
CONF
echo "NodeName=$HOST Name=gpu File=/dev/null Count=1" > /etc/slurm/gres.conf

[ -s /etc/munge/munge.key ] || { dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null; }
chown munge:munge /etc/munge/munge.key /run/munge 2>/dev/null || true
chmod 400 /etc/munge/munge.key
pgrep -x munged >/dev/null || runuser -u munge -- munged

stop() { pid=$(pgrep -x "$1" || true); [ -z "$pid" ] && return 0; kill $pid
  for _ in $(seq 20); do kill -0 $pid 2>/dev/null || return 0; sleep 0.5; done; }
stop slurmd; stop slurmctld; stop slurmdbd
slurmdbd
for _ in $(seq 30); do sacctmgr -n list cluster >/dev/null 2>&1 && break; sleep 1; done
sacctmgr -n list cluster format=cluster | grep -qw latentmi || sacctmgr -i add cluster latentmi >/dev/null
slurmctld
slurmd
for _ in $(seq 30); do sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mix|alloc)$' && break; sleep 1; done
scontrol update NodeName=$HOST State=RESUME >/dev/null 2>&1 || true
sinfo
sinfo --version
