"""PostgreSQL under FerretDB: `./ticketing up --store postgres`.

FerretDB stores on SQLite by default (one file per database, in the profile's data dir).
Its production backend is PostgreSQL, which answers filters in SQL instead of scanning;
with `--store postgres` the profile runs Debian's PostgreSQL server as one more process
and FerretDB keeps its documents there. The application does not change: the
keyvalue-mongo provider still talks to FerretDB over the MongoDB protocol.

The server is the lattice's own: its cluster is made once in the profile's data dir
(`initdb`, database `ferretdb`, role `ferretdb`), it listens on 127.0.0.1 only, where
FerretDB runs, and it accepts that role without a password (`trust`), as nothing else
can reach it. PostgreSQL refuses to run as root, so as root it runs as Debian's
`postgres` user, owning its data dir. Commits are synced to disk (PostgreSQL's
defaults): a change the API acknowledged survives a crash of the machine too.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from .install import install_debian_package
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
    return profile.data_dir / "postgres"


def url(profile: Profile) -> str:
    """Where FerretDB finds the server (pgx's connection string)."""
    return f"postgres://{ROLE}@{ADDRESS}:{profile.ports['postgres']}/{DATABASE}"


def argv(profile: Profile) -> list[str]:
    """The server, in the foreground; on TCP only (no Unix socket, whose path would be
    bounded by the checkout's)."""
    return _as_service_user([str(bin_dir() / "postgres"), "-D", str(data_dir(profile)),
                             "-h", ADDRESS, "-p", str(profile.ports["postgres"]),
                             "-c", "unix_socket_directories=", "-c", "max_connections=200"])


def prepare(profile: Profile) -> None:
    """Makes the cluster, with FerretDB's database and role, unless the data dir has one."""
    directory = data_dir(profile)
    if (directory / "PG_VERSION").exists():
        return
    log(f"making a PostgreSQL cluster in {directory}")
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    if os.geteuid() == 0:
        shutil.chown(directory, SERVICE_USER, SERVICE_USER)
    programs = bin_dir()
    subprocess.run(_as_service_user([str(programs / "initdb"), "-D", str(directory), "-U", ROLE,
                                     "--auth=trust", "--encoding=UTF8", "--no-locale"]),
                   check=True, stdout=subprocess.DEVNULL)
    # Single-user mode: the database exists before the server first listens.
    subprocess.run(_as_service_user([str(programs / "postgres"), "--single", "-D", str(directory), "postgres"]),
                   input=f"CREATE DATABASE {DATABASE} OWNER {ROLE};\n", text=True, check=True,
                   stdout=subprocess.DEVNULL)


def wait_until_ready(profile: Profile, timeout: float = 60.0) -> None:
    """Until the server takes connections (its port opens before it finishes starting)."""
    ready = [str(bin_dir() / "pg_isready"), "-q", "-h", ADDRESS, "-p", str(profile.ports["postgres"]),
             "-U", ROLE, "-d", DATABASE]
    deadline = time.time() + timeout
    while subprocess.run(ready).returncode != 0:
        if time.time() > deadline:
            raise SystemExit(f"PostgreSQL did not take connections within {timeout:.0f}s; "
                             f"see {profile.log_dir / 'postgres.log'}")
        time.sleep(0.2)


def _as_service_user(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    return ["setpriv", f"--reuid={SERVICE_USER}", f"--regid={SERVICE_USER}", "--init-groups", "--", *argv]
