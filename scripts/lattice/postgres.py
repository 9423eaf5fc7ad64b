"""PostgreSQL under FerretDB: `./ticketing up --store postgres`.

FerretDB stores on SQLite by default (one file per database, in the profile's data dir).
Its production backend is PostgreSQL, which answers filters in SQL instead of scanning;
with `--store postgres` the profile runs Debian's PostgreSQL server as one more process
and FerretDB keeps its documents there. The application does not change: the
keyvalue-mongo provider still talks to FerretDB over the MongoDB protocol.

The server is the lattice's own: its cluster is made once in the profile's data dir
(`initdb`, database `ferretdb`, role `ferretdb`; see `data_dir` for where when the
checkout is out of the service user's reach) and listens on 127.0.0.1 only, where
FerretDB runs. Any local user can reach that address, so the role has a random password
(`password_file`, mode 600 in the state dir), given to FerretDB and the tests in the
environment (`PGPASSWORD`, which pgx and psql read), never on a command line or in a log.
PostgreSQL refuses to run as root, so as root it runs as Debian's `postgres` user,
owning its data dir. Commits are synced to disk (PostgreSQL's defaults): a change the
API acknowledged survives a crash of the machine too.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from .install import install_debian_package
from . import procs
from .procs import log
from .settings import Profile

DATABASE = "ferretdb"
ROLE = "ferretdb"
ADDRESS = "127.0.0.1"
SERVICE_USER = "postgres"  # Debian's package makes it


def bin_dir() -> Path:
    """The newest installed PostgreSQL's programs (Debian keeps them off the PATH, in
    /usr/lib/postgresql/<version>/bin), installing Debian's package when there is none."""
    found = _installed()
    if found is None:
        install_debian_package("postgresql", "for --store postgres")
        found = _installed()
    if found is None:
        raise SystemExit("PostgreSQL is not installed and Debian's postgresql package did not provide it; "
                         "install PostgreSQL 13 or later and try again")
    return found


def _installed() -> Path | None:
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parts[-3]))
    if versions:
        return versions[-1].parent
    on_path = shutil.which("postgres")
    return Path(on_path).resolve().parent if on_path else None


def data_dir(profile: Profile) -> Path:
    """The cluster's directory: in the profile's data dir, unless the service user cannot
    reach that (a checkout under root's home, mode 700); then under /var/lib, one per
    profile state dir."""
    own = profile.data_dir / "postgres"
    if os.geteuid() != 0 or _reachable(profile.data_dir):
        return own
    digest = hashlib.sha256(str(profile.state_dir).encode()).hexdigest()[:12]
    return Path("/var/lib/ticketing-postgres") / f"{profile.name}-{digest}"


def _reachable(directory: Path) -> bool:
    directory.mkdir(parents=True, exist_ok=True)
    return subprocess.run(_as_service_user(["test", "-x", str(directory)])).returncode == 0


def password_file(profile: Profile) -> Path:
    return profile.state_dir / "keys" / "postgres.password"


def password_env(profile: Profile) -> dict[str, str]:
    """The environment a client of the server needs (FerretDB, psql)."""
    return {"PGPASSWORD": password_file(profile).read_text().strip()}


def _made_marker(profile: Profile) -> Path:
    """Says the cluster belongs to this state dir: when `clean` (or a test) wipes the state
    dir, the next `up` makes a new cluster, wherever it lives."""
    return profile.data_dir / "postgres.made"


def url(profile: Profile) -> str:
    """Where FerretDB finds the server (pgx's connection string)."""
    return f"postgres://{ROLE}@{ADDRESS}:{profile.ports['postgres']}/{DATABASE}"


def argv(profile: Profile) -> list[str]:
    """The server, in the foreground; on TCP only (no Unix socket, whose path would be
    bounded by the checkout's)."""
    return _as_service_user([str(bin_dir() / "postgres"), "-D", str(data_dir(profile)),
                             "-h", ADDRESS, "-p", str(profile.ports["postgres"]),
                             "-c", "unix_socket_directories=",
                             # Each FerretDB pools up to 50; the provider tests run several.
                             "-c", "max_connections=400"])


def prepare(profile: Profile) -> None:
    """Makes the cluster, with FerretDB's database and role, unless the data dir has one."""
    directory = data_dir(profile)
    if (directory / "PG_VERSION").exists() and _made_marker(profile).exists() and password_file(profile).exists():
        return
    log(f"making a PostgreSQL cluster in {directory}")
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    if os.geteuid() == 0:
        shutil.chown(directory, SERVICE_USER, SERVICE_USER)
    programs = bin_dir()
    # Over TCP only with the password; the local socket (off in `argv`) by user name.
    _quietly([str(programs / "initdb"), "-D", str(directory), "-U", ROLE, "--auth-host=scram-sha-256",
              "--auth-local=peer", "--encoding=UTF8", "--no-locale"])
    password = secrets.token_hex(24)
    password_file(profile).parent.mkdir(parents=True, exist_ok=True)
    password_file(profile).touch(mode=0o600)
    password_file(profile).write_text(password + "\n")
    # Single-user mode, statements on stdin: the database and the password exist before
    # the server first listens, and the password is on no command line.
    _quietly([str(programs / "postgres"), "--single", "-D", str(directory), "postgres"],
             stdin=f"CREATE DATABASE {DATABASE} OWNER {ROLE};\nALTER ROLE {ROLE} PASSWORD '{password}';\n")
    _made_marker(profile).write_text(f"{directory}\n")


def remove(profile: Profile) -> None:
    """Deletes the cluster (`./ticketing clean`), also where it is outside the state dir."""
    if _made_marker(profile).exists():
        shutil.rmtree(data_dir(profile), ignore_errors=True)


def _quietly(argv: list[str], stdin: str | None = None) -> None:
    """Runs a PostgreSQL program as the service user; its output only when it fails."""
    done = subprocess.run(_as_service_user(argv), input=stdin, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")


@contextlib.contextmanager
def server(profile: Profile) -> Iterator[str]:
    """The profile's server on its own, for the provider tests (`./ticketing test`):
    started, its URL without a database yielded, stopped. Not one that runs already:
    that is a lattice's, and its owner stops it."""
    if procs.running(profile, "postgres"):
        raise SystemExit(f"the {profile.name} profile's PostgreSQL runs already; stop it first "
                         f"(./ticketing down --profile {profile.name})")
    prepare(profile)
    procs.start(profile, "postgres", argv(profile))
    try:
        wait_until_ready(profile)
        yield f"postgres://{ROLE}@{ADDRESS}:{profile.ports['postgres']}"
    finally:
        procs.stop(profile, "postgres")


def wait_until_ready(profile: Profile, timeout: float = 60.0) -> None:
    """Until the server takes connections (its port opens before it finishes starting)."""
    ready = [str(bin_dir() / "pg_isready"), "-q", "-h", ADDRESS, "-p", str(profile.ports["postgres"]),
             "-U", ROLE, "-d", DATABASE]
    deadline = time.time() + timeout
    while subprocess.run(ready).returncode != 0:
        if not procs.running(profile, "postgres"):
            raise SystemExit(f"PostgreSQL exited during start-up; last lines of its log:\n"
                             f"{procs.log_tail(profile, 'postgres')}")
        if time.time() > deadline:
            raise SystemExit(f"PostgreSQL did not take connections within {timeout:.0f}s; "
                             f"see {profile.log_dir / 'postgres.log'}")
        time.sleep(0.2)


def _as_service_user(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    return ["setpriv", f"--reuid={SERVICE_USER}", f"--regid={SERVICE_USER}", "--init-groups", "--", *argv]
