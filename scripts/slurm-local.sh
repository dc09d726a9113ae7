#!/usr/bin/env bash
# A one-node Slurm cluster on this machine for the batch tests: `slurm-local.sh start DIR` writes
# DIR/slurm.conf, starts munged, slurmctld and slurmd (all state, logs and sockets under DIR) and
# waits until the node is idle; `slurm-local.sh stop DIR` stops them. Clients use it through
# SLURM_CONF=DIR/slurm.conf. Needs Debian's slurm-wlm and munge (scripts/install-test-deps.sh) and root
# (slurmd starts jobs as their owner). Safe to run again: start stops a previous cluster in DIR first.
set -euo pipefail
cmd=${1:?usage: slurm-local.sh start|stop DIR}
dir=$(realpath -m "${2:?usage: slurm-local.sh start|stop DIR}")

stop() {
  for p in slurmd slurmctld munged; do
    if [ -f "$dir/$p.pid" ]; then
      pid=$(cat "$dir/$p.pid" 2>/dev/null || true)
      [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do { [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; } || break; sleep 0.1; done
      [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
      rm -f "$dir/$p.pid"
    fi
  done
}

if [ "$cmd" = stop ]; then stop; exit 0; fi
[ "$cmd" = start ] || { echo "usage: slurm-local.sh start|stop DIR" >&2; exit 2; }
for b in munged slurmctld slurmd sbatch sinfo; do
  command -v "$b" >/dev/null || [ -x "/usr/sbin/$b" ] || { echo "slurm-local.sh: $b is missing; run scripts/install-test-deps.sh" >&2; exit 2; }
done
stop
mkdir -p "$dir/state" "$dir/spool" "$dir/munge"
chmod 700 "$dir/munge"
host=$(hostname -s)
cpus=$(nproc)
mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
# Ports away from Slurm's defaults, so a real Slurm on the machine is not disturbed.
ctl_port=${REVERIE_SLURMCTLD_PORT:-16817}
d_port=${REVERIE_SLURMD_PORT:-16818}
cat > "$dir/slurm.conf" <<CONF
ClusterName=reverie-test
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctl_port
SlurmdPort=$d_port
SlurmUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerParameters=bf_interval=1
MessageTimeout=20
InactiveLimit=0
KillWait=5
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=reverie Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF
# munged: its own key, socket and pid under DIR.
dd if=/dev/urandom bs=1 count=1024 of="$dir/munge/munge.key" status=none
chmod 400 "$dir/munge/munge.key"
/usr/sbin/munged --force --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.socket" \
  --pid-file="$dir/munged.pid" --log-file="$dir/munged.log" --seed-file="$dir/munge/seed"
export SLURM_CONF=$dir/slurm.conf
/usr/sbin/slurmctld -f "$dir/slurm.conf"
/usr/sbin/slurmd -f "$dir/slurm.conf"
for i in $(seq 120); do
  state=$(sinfo -h -N -o '%t' 2>/dev/null | head -1 || true)
  case "$state" in idle|mix|alloc) echo "slurm: node $host is $state (SLURM_CONF=$dir/slurm.conf)"; exit 0;; esac
  sleep 0.5
done
echo "slurm-local.sh: the node did not become idle in 60 s; see $dir/slurmctld.log and $dir/slurmd.log" >&2
stop
exit 1
