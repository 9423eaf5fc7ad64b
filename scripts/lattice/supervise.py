"""Keeps a profile's processes alive on one machine.

`up` starts this supervisor in the background (process `supervisor`, with its own pid
file and log). Every half second it checks each process of the lattice that `up`
started: one that died (a crashed host, NATS, FerretDB, Redis, ...) is started again the
way `up` starts it, after what was left of it is killed (a host's provider processes),
with a backoff of 1 s doubling to 30 s while it keeps dying, and every restart is
logged. `down` stops the supervisor before anything else, and removes each pid file
before it stops a process, so nothing stopped on purpose is brought back.

Hosts keep their identity across a restart (a server key per host in the state dir), so
wadm sees the same host come back rather than a lost one and a stranger. It puts the
host's components and providers back at its next reconciliation: 16-32 s after the kill
in the drill (`./ticketing drill`), with one host and nothing else to fail over to.
"""
from __future__ import annotations

import time

from . import configs, procs
from .processes import host_names, process_names, start
from .procs import log
from .settings import Profile

FIRST_DELAY = 1.0
LONGEST_DELAY = 30.0
# A process that ran this long since its last restart is healthy again: backoff resets.
STABLE_AFTER = 60.0


class Backoff:
    """When a process that keeps dying may be started again."""

    def __init__(self) -> None:
        self.delay: dict[str, float] = {}
        self.not_before: dict[str, float] = {}
        self.started_at: dict[str, float] = {}

    def may_restart(self, name: str, now: float) -> bool:
        return now >= self.not_before.get(name, 0.0)

    def restarted(self, name: str, now: float) -> float:
        """Records a restart; returns the wait before the next one."""
        if now - self.started_at.get(name, 0.0) > STABLE_AFTER:
            self.delay[name] = FIRST_DELAY
        delay = self.delay.get(name, FIRST_DELAY)
        self.not_before[name] = now + delay
        self.delay[name] = min(delay * 2, LONGEST_DELAY)
        self.started_at[name] = now
        return delay


def check_once(profile: Profile, backoff: Backoff, now: float) -> list[str]:
    """Restarts every process of the profile that died; returns their names."""
    restarted = []
    for name in process_names(profile):
        pid = procs.read_pid(profile, name)
        if pid is None or procs.alive(pid) or not backoff.may_restart(name, now):
            continue  # stopped on purpose (no pid file), running, or backing off
        procs.kill_group(pid)
        delay = backoff.restarted(name, now)
        log(f"{name} (pid {pid}) is gone; starting it again (next restart no sooner than {delay:.0f}s)")
        try:
            start(profile, name)
            restarted.append(name)
        except Exception as e:  # keep supervising the others; tried again after the backoff
            log(f"could not start {name}: {e}")
    manifest = profile.state_dir / "wadm.yaml"
    if any(name in host_names(profile) for name in restarted) and manifest.exists():
        # What the restarted host's components need must exist when wadm scales them.
        try:
            configs.ensure_inline_configs(profile, manifest)
        except (Exception, SystemExit) as e:
            log(f"could not check the named configs: {e}")
    return restarted


def supervise(profile: Profile, interval: float = 0.5) -> None:
    log(f"supervising the {profile.name} lattice's processes")
    backoff = Backoff()
    while True:
        check_once(profile, backoff, time.time())
        time.sleep(interval)
