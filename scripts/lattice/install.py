"""Installs, once, every tool the lattice needs; later calls only check.

- Rust target wasm32-wasip2 (rustup)
- nats-server, stripe-mock and our FerretDB launcher, pinned in tools/go.mod (go install)
- redis-server (Debian package)
- wash 0.43.0 (cargo install --locked)
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time

from .procs import log
from .settings import CACHE, ROOT, TOOLS_BIN, versions

GO_TOOLS = ("nats-server", "stripe-mock", "ferretdb")


def run(argv: list[str], **kwargs) -> None:
    subprocess.run(argv, check=True, **kwargs)


def ensure_rust_target() -> None:
    installed = subprocess.run(["rustup", "target", "list", "--installed"], capture_output=True, text=True, check=True).stdout
    if "wasm32-wasip2" not in installed.split():
        log("adding the Rust target wasm32-wasip2")
        run(["rustup", "target", "add", "wasm32-wasip2"])


def _go_stamp() -> str:
    digest = hashlib.sha256()
    for name in ("go.mod", "go.sum", "ferretdb/main.go"):
        digest.update((ROOT / "tools" / name).read_bytes())
    return digest.hexdigest()


def ensure_go_tools() -> None:
    stamp_file = TOOLS_BIN / ".go-tools.stamp"
    stamp = _go_stamp()
    if all((TOOLS_BIN / t).exists() for t in GO_TOOLS) and stamp_file.exists() and stamp_file.read_text() == stamp:
        return
    log(f"installing {', '.join(GO_TOOLS)} with go install (pinned in tools/go.mod; a few minutes the first time)")
    TOOLS_BIN.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, GOBIN=str(TOOLS_BIN), GOFLAGS="-buildvcs=false")
    started = time.time()
    run(["go", "install", "./ferretdb", "tool"], cwd=ROOT / "tools", env=env)
    stamp_file.write_text(stamp)
    log(f"go tools installed in {time.time() - started:.0f}s")


def ensure_redis() -> None:
    if shutil.which("redis-server"):
        return
    log("installing redis-server (Debian package)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run(["apt-get", "update", "-qq"], env=env)
    run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "redis-server"], env=env)


def wash_path() -> str:
    return str(TOOLS_BIN / "wash")


def ensure_wash() -> None:
    version = versions()["wash"]
    wash = TOOLS_BIN / "wash"
    if wash.exists():
        out = subprocess.run([str(wash), "--version"], capture_output=True, text=True).stdout
        if version in out:
            return
    log(f"installing wash {version} with cargo install (the first time takes 15-25 minutes on 2 cores; log: {CACHE / 'wash-install.log'})")
    CACHE.mkdir(parents=True, exist_ok=True)
    # wash is a command-line client: a dev build without debug info compiles in a
    # fraction of a release build's time and is fast enough for what we ask of it.
    env = dict(os.environ, CARGO_PROFILE_DEV_DEBUG="0", CARGO_TARGET_DIR=str(CACHE / "wash-target"))
    started = time.time()
    with open(CACHE / "wash-install.log", "ab") as logfile:
        result = subprocess.run(
            ["cargo", "install", "wash", "--version", version, "--locked", "--debug", "--root", str(TOOLS_BIN.parent)],
            env=env, stdout=logfile, stderr=subprocess.STDOUT,
        )
    if result.returncode != 0:
        raise SystemExit(f"cargo install wash failed; see {CACHE / 'wash-install.log'}")
    log(f"wash installed in {time.time() - started:.0f}s")


def ensure_all() -> None:
    ensure_rust_target()
    ensure_go_tools()
    ensure_redis()
    ensure_wash()
