#!/usr/bin/env bash
# A one-node Slurm cluster on localhost, for `make test-slurm` and for trying tools/mapflow.sbatch on a laptop.
#   tools/slurm_one_node.sh start STATE_DIR   # installs Debian's slurm-wlm + munge if missing, starts munged,
#                                              # slurmctld and slurmd; prints `export SLURM_CONF=...`
#   tools/slurm_one_node.sh stop STATE_DIR    # stops the daemons it started (by their pid files)
# Runs as root (SlurmUser/SlurmdUser root); ProctrackType=proctrack/linuxproc and TaskPlugin=task/none need no
# cgroups. No GRES: a job that asks for a GPU never starts here (tools/mapflow.sbatch asks for none by default).
set -euo pipefail
cmd=${1:?start or stop}; state=$(realpath -m "${2:?a state folder}")
conf=$state/slurm.conf
case $cmd in
start)
  if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
  fi
  mkdir -p "$state/state" "$state/spool"
  host=$(hostname -s); cpus=$(nproc); mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 / 2 ))
  cat > "$conf" <<CONF
ClusterName=mapflow
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$state/state
SlurmdSpoolDir=$state/spool
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldPort=$(( 16817 + RANDOM % 1000 ))
SlurmdPort=$(( 17818 + RANDOM % 1000 ))
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
SlurmctldLogFile=$state/ctld.log
SlurmdLogFile=$state/d.log
JobCompType=jobcomp/none
MpiDefault=none
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
  mkdir -p /run/munge && chown munge: /run/munge 2>/dev/null || true
  pgrep -x munged >/dev/null || { munged --force 2>/dev/null && touch "$state/munged.ours"; }
  export SLURM_CONF=$conf
  slurmctld -f "$conf"
  slurmd -f "$conf"
  for _ in $(seq 60); do
    sinfo -h -o %T 2>/dev/null | grep -qE '^idle' && break
    sleep 1
  done
  sinfo -h -o %T | grep -qE '^idle' || { echo "slurm did not come up; logs in $state" >&2; exit 1; }
  echo "export SLURM_CONF=$conf"
  ;;
stop)
  for d in slurmd slurmctld; do
    if [ -f "$state/$d.pid" ]; then kill "$(cat "$state/$d.pid")" 2>/dev/null || true; fi
  done
  if [ -f "$state/munged.ours" ]; then pkill -x munged || true; rm -f "$state/munged.ours"; fi
  ;;
*) echo "usage: $0 start|stop STATE_DIR" >&2; exit 2 ;;
esac
