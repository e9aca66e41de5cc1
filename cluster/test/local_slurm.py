"""A real SLURM (Debian's slurm-wlm) on this one host, emulating two nodes, for tests.

    with LocalSlurm(workdir) as slurm:
        job = slurm.sbatch(["cluster/slurm/train.sbatch", "recipe.yaml"], nodes=2, env={...})
        slurm.wait(job, "COMPLETED")

It writes its own slurm.conf under ``workdir``, starts munged (unless one answers already),
slurmctld and one slurmd per node in the foreground as child processes, and stops them by PID
on exit, so no daemon outlives it. Needs root and the packages slurmctld, slurmd, slurm-client,
munge (``apt-get install -y --no-install-recommends slurmctld slurmd slurm-client munge``).
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

NODES = ("n1", "n2")
CONF = """\
ClusterName=cgxtest
SlurmctldHost=localhost
SlurmctldPort={ctld_port}
AuthType=auth/munge
AuthInfo=cred_expire=10
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool/%n
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.%n.pid
SlurmctldLogFile={d}/slurmctld.log
SlurmdLogFile={d}/slurmd.%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1,bf_interval=1
JobRequeue=1
ReturnToService=2
MpiDefault=none
KillWait=10
MinJobAge=600
InactiveLimit=0
NodeName=n[1-2] NodeHostname=localhost NodeAddr=127.0.0.1 Port={node_ports} CPUs=2 State=UNKNOWN
PartitionName=debug Nodes=n[1-2] Default=YES MaxTime=INFINITE State=UP
"""


class SlurmError(RuntimeError):
    pass


def available() -> str | None:
    """None if a local SLURM can run here, else why not."""
    missing = [b for b in ("slurmctld", "slurmd", "sbatch", "scontrol", "munged") if shutil.which(b) is None]
    if missing:
        return f"not installed: {', '.join(missing)} (apt-get install slurmctld slurmd slurm-client munge)"
    if os.geteuid() != 0:
        return "needs root (SlurmUser=root, munged as user munge)"
    return None


class LocalSlurm:
    def __init__(self, workdir: str | Path, ctld_port: int = 16817, node_port: int = 17001) -> None:
        self.dir = Path(workdir).resolve()
        self.conf = self.dir / "slurm.conf"
        self.ctld_port, self.node_port = ctld_port, node_port
        self.procs: list[subprocess.Popen] = []
        self.munged_pid: int | None = None
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}

    # --- daemons -------------------------------------------------------------------------------

    def __enter__(self) -> "LocalSlurm":
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        why = available()
        if why:
            raise SlurmError(why)
        for sub in ("state", "spool/n1", "spool/n2"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        self.conf.write_text(CONF.format(d=self.dir, ctld_port=self.ctld_port,
                                         node_ports=f"{self.node_port}-{self.node_port + 1}"))
        self._start_munge()
        self.procs.append(self._spawn(["slurmctld", "-D", "-i", "-f", str(self.conf)], "slurmctld.stdout"))
        for n in NODES:
            self.procs.append(self._spawn(["slurmd", "-D", "-N", n, "-f", str(self.conf)], f"slurmd.{n}.stdout"))
        deadline = time.time() + 60
        while time.time() < deadline:
            out = self.run(["sinfo", "-h", "-o", "%T %D"], check=False).stdout
            if re.search(r"^idle 2$", out, re.M):
                return
            self._check_alive()
            time.sleep(0.5)
        raise SlurmError(f"nodes not idle after 60 s: {out!r}; see {self.dir}/*.log")

    def _start_munge(self) -> None:
        probe = subprocess.run(["munge", "-n"], capture_output=True)
        if probe.returncode == 0:
            return  # a munged already answers (not ours to stop)
        run_dir = Path("/run/munge")
        run_dir.mkdir(parents=True, exist_ok=True)
        shutil.chown(run_dir, "munge", "munge")
        if not Path("/etc/munge/munge.key").exists():
            subprocess.run(["runuser", "-u", "munge", "--", "mungekey", "--create"], check=True)
        subprocess.run(["runuser", "-u", "munge", "--", "munged"], check=True)
        pidfile = run_dir / "munged.pid"
        for _ in range(50):
            if pidfile.exists() and subprocess.run(["munge", "-n"], capture_output=True).returncode == 0:
                self.munged_pid = int(pidfile.read_text().split()[0])
                return
            time.sleep(0.1)
        raise SlurmError("munged did not start")

    def _spawn(self, cmd: list[str], log: str) -> subprocess.Popen:
        return subprocess.Popen(cmd, stdout=open(self.dir / log, "ab"), stderr=subprocess.STDOUT, env=self.env,
                                start_new_session=True)

    def _check_alive(self) -> None:
        for p in self.procs:
            if p.poll() is not None:
                raise SlurmError(f"{p.args[0]} exited with {p.returncode}; see {self.dir}/*.log and *.stdout")

    def stop(self) -> None:
        """Cancel every job, then stop every daemon this started and whatever they spawned
        (slurmstepd, job scripts), by PID: TERM, then KILL after 10 s."""
        if self.procs and all(p.poll() is None for p in self.procs):
            self.run(["scancel", "--full", "--user=root"], check=False)
            deadline = time.time() + 20
            while time.time() < deadline and self.run(["squeue", "-h"], check=False).stdout.strip():
                time.sleep(0.5)
        spawned = _descendants({p.pid for p in self.procs})
        for p in self.procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        self.procs.clear()
        for pid in spawned:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.munged_pid is not None:
            try:
                os.kill(self.munged_pid, signal.SIGTERM)
                for _ in range(50):
                    os.kill(self.munged_pid, 0)
                    time.sleep(0.1)
            except ProcessLookupError:
                pass
            self.munged_pid = None

    # --- jobs ----------------------------------------------------------------------------------

    def run(self, cmd: list[str], check: bool = True, **kw) -> subprocess.CompletedProcess:
        proc = subprocess.run(cmd, capture_output=True, text=True, env={**self.env, **kw.pop("env", {})}, **kw)
        if check and proc.returncode != 0:
            raise SlurmError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()}")
        return proc

    def sbatch(self, args: list[str], env: dict | None = None, cwd: str | Path | None = None) -> str:
        out = self.run(["sbatch", "--parsable", *args], env=env or {}, cwd=cwd).stdout.strip()
        return out.split(";")[0]

    def job(self, job_id: str) -> dict:
        out = self.run(["scontrol", "show", "job", "-o", job_id]).stdout
        return dict(re.findall(r"(\w+)=(\S*)", out))

    def wait(self, job_id: str, states=("COMPLETED",), timeout: float = 300, bump_pending: bool = True) -> dict:
        """Wait for the job to reach one of ``states``; a terminal state not wanted raises.

        A requeued job sits PENDING until its old job credential has expired (cred_expire=10 s);
        starting it earlier fails it ("Job credential revoked", seen here). With ``bump_pending``,
        a requeued job still pending 12 s after it was first seen pending is started at once."""
        terminal = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED", "BOOT_FAIL"}
        deadline = time.time() + timeout
        pending_since = None
        while time.time() < deadline:
            info = self.job(job_id)
            state = info.get("JobState", "")
            if state in states:
                return info
            if state in terminal:
                raise SlurmError(f"job {job_id} ended {state} (wanted {states}): {info}")
            requeued = state == "PENDING" and info.get("Restarts", "0") != "0"
            pending_since = (pending_since or time.time()) if requeued else None
            if bump_pending and requeued and time.time() - pending_since > 12:
                self.run(["scontrol", "update", f"JobId={job_id}", "StartTime=now"], check=False)
                pending_since = time.time()
            self._check_alive()
            time.sleep(0.5)
        raise SlurmError(f"job {job_id} not in {states} after {timeout} s: {self.job(job_id)}")


def _descendants(roots: set[int]) -> list[int]:
    """PIDs of every live process below ``roots`` (read from /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], list(roots)
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out
