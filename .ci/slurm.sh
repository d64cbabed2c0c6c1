#!/usr/bin/env bash
# A one-node SLURM on this machine, for the cluster tests (make slurm, make slurm-stop, make slurm-test).
#   .ci/slurm.sh start    install slurm-wlm and munge if missing, write /etc/slurm/slurm.conf for this machine's
#                         cores and memory, start munged, slurmctld and slurmd, wait until sinfo shows the node idle
#   .ci/slurm.sh stop     cancel its jobs, stop the daemons it started
# Both are idempotent. Needs root (SlurmUser=root, as SLURM's own CI runs it). A slurm.conf without this script's
# header line is someone else's: it is never overwritten, and that cluster is never stopped.
set -euo pipefail

CONF=${SLURM_CONF:-/etc/slurm/slurm.conf}
HEADER="# Written by fer-lightning's .ci/slurm.sh (make slurm): a one-node test cluster. Rewritten by make slurm."
STATE=/var/spool/fer-slurm   # slurmctld's state, slurmd's spool, and munged.started (munged was started here)
RUN=/run/fer-slurm           # pid files
LOGS=/var/log/fer-slurm      # daemon logs and jobcomp.log: one line per job end, with its state (COMPLETED, REQUEUED, ...)
NODE=$(hostname -s)

say() { echo "slurm: $*"; }
die() { echo "slurm: error: $*" >&2; exit 1; }
ours() { [[ -f $CONF && $(head -n 1 "$CONF") == "$HEADER" ]]; }
alive() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }
node_state() { sinfo -h -n "$NODE" -o %t 2>/dev/null | head -n 1; }

install() {
  if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sinfo >/dev/null \
      && command -v munged >/dev/null; then
    return
  fi
  say "installing slurm-wlm and munge (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-cache show slurm-wlm >/dev/null 2>&1; then apt-get update -q; fi
  apt-get install -y -q --no-install-recommends slurm-wlm munge
}

write_conf() {
  if [[ -f $CONF ]] && ! ours; then
    die "$CONF exists and was not written by make slurm: leaving it (and its cluster) alone. Move it away to start the test cluster, or run the slurm tests against that cluster."
  fi
  local hardware
  hardware=$(slurmd -C | head -n 1)   # NodeName=<host> CPUs=.. Boards=.. SocketsPerBoard=.. CoresPerSocket=.. ThreadsPerCore=.. RealMemory=..
  [[ $hardware == NodeName=* ]] || die "slurmd -C did not describe this machine: $hardware"
  mkdir -p "$(dirname "$CONF")" "$STATE/ctld" "$STATE/d" "$RUN" "$LOGS"
  cat > "$CONF.tmp" <<EOF
$HEADER
# This machine as one node: its real cores and memory (slurmd -C). Root runs everything; no cgroups, no accounting
# database: job end states go to JobCompLoc (jobcomp/filetxt).
ClusterName=fer
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# A requeued job may start again after cred_expire seconds (SLURM's default 120; 10 here, so tests wait less).
AuthInfo=cred_expire=10
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$LOGS/jobcomp.log
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
ReturnToService=2
# Scheduling passes every 5 s (default 60 and 30): a requeued job starts within seconds of becoming eligible.
SchedulerParameters=sched_interval=5,bf_interval=5
$hardware NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
  mv "$CONF.tmp" "$CONF"
}

start_munge() {
  if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then return; fi   # a munged is up (ours or the system's)
  [[ -f /etc/munge/munge.key ]] || runuser -u munge -- mungekey --create
  mkdir -p /run/munge && chown munge:munge /run/munge
  runuser -u munge -- /usr/sbin/munged
  mkdir -p "$STATE" && cp /run/munge/munged.pid "$STATE/munged.started"
  for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return; sleep 0.2; done
  die "munged did not start (see /var/log/munge/munged.log)"
}

start() {
  [[ $(id -u) == 0 ]] || die "run as root (the test cluster runs SlurmUser=root)"
  install
  if ours && alive "$RUN/slurmctld.pid" && alive "$RUN/slurmd.pid" && [[ $(node_state) == idle* || $(node_state) == mix* || $(node_state) == alloc* ]]; then
    say "already up: $(sinfo -h -o '%P %D node %t, %c cpus, %m MB')"
    return
  fi
  write_conf
  start_munge
  alive "$RUN/slurmctld.pid" || slurmctld
  alive "$RUN/slurmd.pid" || slurmd
  for _ in $(seq 120); do
    case $(node_state) in
      idle*) say "up: $(sinfo -h -o '%P %D node %t, %c cpus, %m MB'); jobs end in $LOGS/jobcomp.log"; return ;;
      down*|drain*) scontrol update nodename="$NODE" state=resume 2>/dev/null || true ;;
    esac
    sleep 0.5
  done
  sinfo -N -l || true
  tail -n 20 "$LOGS/slurmctld.log" "$LOGS/slurmd.log" >&2 || true
  die "the node did not become idle within 60 s"
}

wait_gone() {  # pid files
  for _ in $(seq 60); do
    local running=0
    for f in "$@"; do alive "$f" && running=1; done
    [[ $running == 0 ]] && return
    sleep 0.5
  done
  for f in "$@"; do alive "$f" && { say "killing $(basename "$f" .pid) ($(cat "$f"))"; kill -9 "$(cat "$f")" || true; }; done
}

stop() {
  if [[ -f $CONF ]] && ! ours; then
    die "$CONF was not written by make slurm: not stopping that cluster"
  fi
  if alive "$RUN/slurmctld.pid"; then
    local jobs
    jobs=$(squeue -h -o %i 2>/dev/null || true)
    if [[ -n $jobs ]]; then say "cancelling jobs: $(echo $jobs)"; scancel $jobs || true; sleep 1; fi
    scontrol shutdown || true   # slurmctld and every slurmd
  fi
  alive "$RUN/slurmd.pid" && kill "$(cat "$RUN/slurmd.pid")"
  wait_gone "$RUN/slurmctld.pid" "$RUN/slurmd.pid"
  if alive "$STATE/munged.started"; then
    kill "$(cat "$STATE/munged.started")"
    wait_gone "$STATE/munged.started"
  fi
  rm -f "$STATE/munged.started"
  say "stopped"
}

case ${1:-} in
  start) start ;;
  stop) stop ;;
  *) die "usage: $0 start|stop" ;;
esac
