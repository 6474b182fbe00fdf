"""A real one-node SLURM cluster on localhost, for tests (facts in ../shared/SLURM-NOTES.md).

Debian's slurmctld/slurmd/slurm-client and munge are installed when absent (root on Debian only). The cluster
keeps its state in a temporary folder; its slurm.conf goes where every SLURM command looks for it,
/etc/slurm/slurm.conf (the executor plugin strips SLURM_* variables, SLURM_CONF included, before srun runs
inside a job). An existing slurm.conf that radflow did not write is never touched: the tests skip instead.
The daemons are shut down by the PIDs they wrote, and the slurm.conf is removed again.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import time
from pathlib import Path

PACKAGES = ["slurmctld", "slurmd", "slurm-client", "munge"]
SYSTEM_CONF = Path("/etc/slurm/slurm.conf")
MARKER = "# written by radflow's tests (tests/slurm_cluster.py); removed when they finish\n"


class SlurmUnavailable(Exception):
    """SLURM cannot run here (not root, not Debian); the reason says which."""


def _run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def install() -> None:
    """Install Debian's SLURM and munge packages when they are missing; raise SlurmUnavailable where we cannot."""
    if all(shutil.which(b) for b in ("slurmctld", "slurmd", "sbatch", "squeue", "munged")):
        return
    if os.geteuid() != 0:
        raise SlurmUnavailable(
            "SLURM is not installed and the tests are not running as root, so they cannot install it"
        )
    if not Path("/etc/debian_version").exists() or not shutil.which("apt-get"):
        raise SlurmUnavailable("SLURM is not installed and this is not Debian (no apt-get) to install it from")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *PACKAGES]
    r = _run(cmd, env=env, timeout=600)
    if r.returncode != 0:  # stale package lists: refresh once
        _run(["apt-get", "update", "-q"], env=env, timeout=600)
        r = _run(cmd, env=env, timeout=600)
    if r.returncode != 0:
        # root on Debian: CI must run this test, so a failed install is an error, never a skip
        raise RuntimeError(f"apt-get install {' '.join(PACKAGES)} failed:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")


def _wait(predicate, timeout: float, what: str):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.5)
    raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")


class LocalSlurm:
    """slurmctld + slurmd (+ munged when none runs) on localhost; use as a context manager."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.conf = SYSTEM_CONF
        self.env = dict(os.environ, SLURM_CONF=str(self.conf))
        self.pidfiles: list[Path] = []

    # -- munge ---------------------------------------------------------------------------------------------
    def _munge_ok(self) -> bool:
        enc = _run(["munge", "-n"])
        return enc.returncode == 0 and _run(["unmunge"], input=enc.stdout).returncode == 0

    def _start_munge(self) -> None:
        if self._munge_ok():
            return
        munge = pwd.getpwnam("munge")
        run_dir = Path("/run/munge")
        run_dir.mkdir(parents=True, exist_ok=True)
        os.chown(run_dir, munge.pw_uid, munge.pw_gid)
        key = Path("/etc/munge/munge.key")
        if not key.exists():
            _run(["mungekey", "--create"], check=True)
        os.chown(key, munge.pw_uid, munge.pw_gid)
        key.chmod(0o400)
        # munged refuses to run as root ("Logfile is insecure"); systemd is not PID 1 here, so start it ourselves
        r = _run(["runuser", "-u", "munge", "--", "/usr/sbin/munged"])
        if r.returncode != 0:
            raise RuntimeError(f"munged did not start: {r.stderr}")
        self.pidfiles.append(run_dir / "munged.pid")
        _wait(self._munge_ok, 20, "munge to answer")

    # -- slurm ---------------------------------------------------------------------------------------------
    def _write_conf(self) -> None:
        if self.conf.exists() and not self.conf.read_text().startswith(MARKER):
            raise SlurmUnavailable(f"{self.conf} exists and belongs to a real SLURM set-up; not touching it")
        self.conf.parent.mkdir(parents=True, exist_ok=True)
        for d in ("spool/ctld", "spool/d", "log"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        hw = _run(["slurmd", "-C"], check=True).stdout.splitlines()[0]  # NodeName=... CPUs=... RealMemory=...
        hw = " ".join(f for f in hw.split() if not f.startswith("NodeName="))
        r = self.root
        self.conf.write_text(
            MARKER
            + f"""\
ClusterName=radflowtest
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=256
MailProg=/bin/true
MinJobAge=300
ReturnToService=2
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
StateSaveLocation={r}/spool/ctld
SlurmdSpoolDir={r}/spool/d
SlurmctldPidFile={r}/slurmctld.pid
SlurmdPidFile={r}/slurmd.pid
SlurmctldLogFile={r}/log/slurmctld.log
SlurmdLogFile={r}/log/slurmd.log
NodeName=localhost {hw} State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""
        )

    def _idle(self) -> bool:
        r = _run(["sinfo", "-h", "-o", "%T"], env=self.env)
        return r.returncode == 0 and r.stdout.strip() in ("idle", "mixed")

    def start(self) -> "LocalSlurm":
        install()
        self._start_munge()
        self._write_conf()
        for daemon, pid in (("slurmctld", "slurmctld.pid"), ("slurmd", "slurmd.pid")):
            r = _run([daemon, "-f", str(self.conf)], env=self.env)  # both daemonise
            if r.returncode != 0:
                raise RuntimeError(f"{daemon} did not start: {r.stderr}\n{self.logs()}")
            self.pidfiles.append(self.root / pid)
        _wait(self._idle, 60, f"the node to be idle (sinfo); logs:\n{self.logs()}")
        return self

    def logs(self) -> str:
        return "\n".join(p.read_text()[-3000:] for p in sorted((self.root / "log").glob("*.log")))

    def stop(self) -> None:
        """Shut the daemons down by PID (slurmd first, munged last when we started it)."""
        for pidfile in reversed(self.pidfiles):
            try:
                pid = int(pidfile.read_text().split()[0])
            except (OSError, ValueError, IndexError):
                continue
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            end = time.monotonic() + 15
            while time.monotonic() < end:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.2)
            else:
                os.kill(pid, signal.SIGKILL)
        self.pidfiles.clear()
        if self.conf.exists() and self.conf.read_text().startswith(MARKER):
            self.conf.unlink()

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc):
        self.stop()
