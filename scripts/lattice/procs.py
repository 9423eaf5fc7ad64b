"""Background processes of a profile: started with a pid file and a log, stopped by pid.

Each process leads its own process group, so stopping a wasmCloud host also stops the
provider processes it spawned.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from .settings import Profile


def log(message: str) -> None:
    print(f"==> {message}", flush=True)


def pid_file(profile: Profile, name: str) -> Path:
    return profile.pid_dir / f"{name}.pid"


def read_pid(profile: Profile, name: str) -> int | None:
    try:
        return int(pid_file(profile, name).read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); treat it as gone.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def running(profile: Profile, name: str) -> int | None:
    pid = read_pid(profile, name)
    return pid if alive(pid) else None


def start(profile: Profile, name: str, argv: list[str], env: dict | None = None, cwd: Path | None = None) -> int:
    """Starts `argv` in the background unless it already runs; returns its pid."""
    pid = running(profile, name)
    if pid:
        log(f"{name} already running (pid {pid})")
        return pid
    profile.pid_dir.mkdir(parents=True, exist_ok=True)
    profile.log_dir.mkdir(parents=True, exist_ok=True)
    logfile = open(profile.log_dir / f"{name}.log", "ab")
    logfile.write(f"\n--- started {time.strftime('%Y-%m-%d %H:%M:%S')}: {' '.join(argv)}\n".encode())
    logfile.flush()
    proc = subprocess.Popen(
        argv,
        stdout=logfile,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
        cwd=str(cwd) if cwd else None,
        start_new_session=True,
    )
    pid_file(profile, name).write_text(str(proc.pid))
    log(f"started {name} (pid {proc.pid}, log {profile.log_dir / (name + '.log')})")
    return proc.pid


def stop(profile: Profile, name: str, timeout: float = 15.0) -> bool:
    """Stops a process and its group: SIGTERM, then SIGKILL after `timeout`."""
    pid = read_pid(profile, name)
    pid_file(profile, name).unlink(missing_ok=True)
    if not alive(pid):
        return False
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.time() + timeout
    while time.time() < deadline and alive(pid):
        time.sleep(0.1)
    try:
        # Whatever is left of the group (a host's providers, or a stuck process).
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    reap(pid)  # if it is our child (tests start and stop in one process)
    return True


def kill_group(pid: int) -> None:
    """Kills whatever is left of process group `pid` (a dead host's provider processes),
    and reaps `pid` if it is our child: a zombie still holds its pid, and PostgreSQL
    refuses to start while the pid in its lock file exists."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    reap(pid)


def reap(pid: int) -> None:
    """Collects the exit status of `pid` if it is our child and has ended."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def log_tail(profile: Profile, name: str, lines: int = 30) -> str:
    path = profile.log_dir / f"{name}.log"
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def wait_for_port(profile: Profile, name: str, port: int, timeout: float = 60.0, address: str | None = None) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if port_open(port, address or profile.address):
            return
        if not running(profile, name):
            raise SystemExit(f"{name} exited during start-up; last lines of its log:\n{log_tail(profile, name)}")
        time.sleep(0.2)
    raise SystemExit(f"{name} did not open port {port} within {timeout:.0f}s; see {profile.log_dir / (name + '.log')}")
