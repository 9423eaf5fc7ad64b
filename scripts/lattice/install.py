"""Installs, once, every tool the lattice needs; later calls only check.

- Rust target wasm32-wasip2 (rustup)
- nats-server, natscli (`nats`), CNCF distribution's `registry`, stripe-mock and our FerretDB
  launcher, pinned in tools/go.mod (go install)
- redis-server (Debian package)
- wash 0.43.0 and the secrets backend secrets-nats-kv 0.2.0 (cargo install --locked)
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
import shutil
import subprocess
import time
from pathlib import Path

from .procs import log
from .settings import CACHE, ROOT, TOOLS_BIN, versions

GO_TOOLS = ("nats-server", "nats", "registry", "stripe-mock", "ferretdb")


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
    for _, _, patch_names in PATCHED_GO_MODULES:
        for name in patch_names:
            digest.update((ROOT / "patches" / name).read_bytes())
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


def ensure_debian_package(command: str, package: str, why: str) -> None:
    """Installs Debian's `package` unless `command` is on the PATH."""
    if not shutil.which(command):
        install_debian_package(package, why)


def install_debian_package(package: str, why: str) -> None:
    log(f"installing {package} (Debian package) {why}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run(["apt-get", "update", "-qq"], env=env)
    run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", package], env=env)


def ensure_redis() -> None:
    ensure_debian_package("redis-server", "redis-server", "for the lattice")


def ensure_wrk() -> None:
    """wrk, the HTTP load generator `./ticketing bench` and `profile` drive."""
    ensure_debian_package("wrk", "wrk", "for the benchmark")


def ensure_test_tools() -> None:
    """What only the tests need: Debian's Chromium for the browser tests, driven by
    Playwright, and the Python packages of tests/requirements.txt."""
    ensure_debian_package("chromium", "chromium", "for the browser tests")
    modules = ("pytest", "yaml", "playwright", "schemathesis", "openapi_spec_validator")
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        log(f"installing Python test packages ({', '.join(missing)} missing) from tests/requirements.txt")
        run([sys.executable, "-m", "pip", "install", "-q", "-r", str(ROOT / "tests" / "requirements.txt")])


def wash_path() -> str:
    return str(TOOLS_BIN / "wash")


def ensure_wash() -> None:
    _cargo_install("wash", versions()["wash"], "about 4 minutes")


def ensure_secrets_backend() -> None:
    """wasmCloud's NATS KV secrets backend (`secrets-nats-kv run`, see secret_store.py)."""
    _cargo_install("secrets-nats-kv", versions()["secrets_nats_kv"], "about 1 minute")


def _cargo_install(crate: str, version: str, how_long: str) -> None:
    """`cargo install --locked` of a published command-line tool into TOOLS_BIN, once."""
    tool = TOOLS_BIN / crate
    if tool.exists():
        out = subprocess.run([str(tool), "--version"], capture_output=True, text=True).stdout
        if version in out:
            return
    install_log = CACHE / f"{crate}-install.log"
    log(f"installing {crate} {version} with cargo install ({how_long} the first time on 2 cores; log: {install_log})")
    CACHE.mkdir(parents=True, exist_ok=True)
    # A command-line client: a dev build without debug info compiles in a fraction of a
    # release build's time and is fast enough for what we ask of it.
    env = dict(os.environ, CARGO_PROFILE_DEV_DEBUG="0", CARGO_TARGET_DIR=str(CACHE / f"{crate}-target"))
    started = time.time()
    with open(install_log, "ab") as logfile:
        result = subprocess.run(
            ["cargo", "install", crate, "--version", version, "--locked", "--debug", "--root", str(TOOLS_BIN.parent)],
            env=env, stdout=logfile, stderr=subprocess.STDOUT,
        )
    if result.returncode != 0:
        raise SystemExit(f"cargo install {crate} failed; see {install_log}")
    log(f"{crate} installed in {time.time() - started:.0f}s")


# crate, version, patch files applied in order: see patches/README.md
PATCHED_CRATES = [
    ("wrpc-transport-nats", "0.29.0", ["wrpc-transport-nats-0.29.0-biased-demux.patch"]),
    ("wasmcloud-host", "0.27.1", ["wasmcloud-host-0.27.1-links-on-start.patch",
                                  "wasmcloud-host-0.27.1-path-ingress.patch",
                                  "wasmcloud-host-0.27.1-update-on-scale.patch",
                                  "wasmcloud-host-0.27.1-listen-when-ready.patch",
                                  "wasmcloud-host-0.27.1-scale-keeps-running-code.patch",
                                  "wasmcloud-host-0.27.1-reuse-wrpc-clients.patch"]),
    ("wadm", "0.21.1", ["wadm-0.21.1-keep-configs-on-cleanup.patch"]),
    ("wasmcloud-runtime", "0.12.0", ["wasmcloud-runtime-0.12.0-warm-memory.patch"]),
]
# Go module, version, patch files; tools/go.mod `replace`s each with its patched copy.
PATCHED_GO_MODULES = [
    ("github.com/FerretDB/FerretDB", "v1.24.2", [
        "ferretdb-v1.24.2-id-index.patch", "ferretdb-v1.24.2-id-pushdown.patch", "ferretdb-v1.24.2-write-turns.patch",
        "ferretdb-v1.24.2-track-in-debug-builds-only.patch", "ferretdb-v1.24.2-postgresql-id-lookup.patch",
    ]),
]


def ensure_patched_crates() -> None:
    """Places patched copies of published crates where Cargo.toml's [patch] expects them."""
    for crate, version, patch_names in PATCHED_CRATES:
        _place_patched(f"{crate}-{version}", patch_names, lambda: _fetch_crate_source(crate, version))


def ensure_patched_go_modules() -> None:
    """Places patched copies of Go modules where tools/go.mod's `replace` expects them."""
    for module, version, patch_names in PATCHED_GO_MODULES:
        _place_patched(f"{module.rsplit('/', 1)[-1]}-{version}", patch_names, lambda: _fetch_go_module(module, version))


def _place_patched(name: str, patch_names: list[str], fetch_source) -> None:
    """`.patched/<name>`: the source `fetch_source()` returns with `patch_names` applied in
    order; redone only when the patches change."""
    patches = [ROOT / "patches" / patch_name for patch_name in patch_names]
    dest = ROOT / ".patched" / name
    stamp = dest / ".ticketing-patch"
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in patches)).hexdigest()
    if stamp.exists() and stamp.read_text() == digest:
        return
    log(f"patching {name} ({', '.join(patch_names)})")
    source = fetch_source()
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(source, dest)
    for path in [dest, *dest.rglob("*")]:  # Go's module cache is read-only
        path.chmod(path.stat().st_mode | 0o200)
    # Outside any repository: inside one (the clone), `git apply` would resolve the
    # patch's paths from the repository's root and silently skip them.
    env = dict(os.environ, GIT_CEILING_DIRECTORIES=str(dest.parent))
    for patch in patches:
        run(["git", "apply", "--verbose", str(patch)], cwd=dest, env=env)
    if not all(_applied(dest, patch, later=patches[i + 1:]) for i, patch in enumerate(patches)):
        raise SystemExit(f"a patch of {name} did not apply; see patches/README.md")
    stamp.write_text(digest)


def _fetch_go_module(module: str, version: str) -> Path:
    """The unpacked source of a Go module, downloaded by go itself into its module cache."""
    CACHE.mkdir(parents=True, exist_ok=True)
    found = subprocess.run(["go", "mod", "download", "-json", f"{module}@{version}"], cwd=CACHE,
                           capture_output=True, text=True)
    if found.returncode != 0:
        raise SystemExit(f"could not fetch the Go module {module}@{version}: {found.stdout}{found.stderr}")
    return Path(json.loads(found.stdout)["Dir"])


def _applied(dest: Path, patch: Path, later: list[Path] = ()) -> bool:
    """Whether every line `patch` adds (and no `later` patch takes out again) is in the
    patched copy (a cheap guard against a patch that was skipped rather than applied)."""
    def lines(p: Path, sign: str) -> list[str]:
        return [line[1:].strip() for line in p.read_text().splitlines() if line.startswith(sign) and not line.startswith(sign * 3)]
    removed_later = {line for p in later for line in lines(p, "-")}
    added = [line for line in lines(patch, "+") if line not in removed_later]
    files = {line.split(maxsplit=1)[1].split("\t")[0].removeprefix("b/") for line in patch.read_text().splitlines() if line.startswith("+++ ")}
    text = "".join((dest / f).read_text() for f in files if (dest / f).exists())
    return all(line in text for line in added if line)


def _fetch_crate_source(crate: str, version: str) -> Path:
    """The unpacked source of a published crate, downloaded by cargo itself."""
    cargo_home = Path(os.environ.get("CARGO_HOME", Path.home() / ".cargo"))
    found = sorted(cargo_home.glob(f"registry/src/*/{crate}-{version}"))
    if not found:
        fetcher = CACHE / "crate-fetch" / f"{crate}-{version}"
        (fetcher / "src").mkdir(parents=True, exist_ok=True)
        (fetcher / "src" / "lib.rs").write_text("")
        (fetcher / "Cargo.toml").write_text(
            f'[package]\nname = "fetch"\nversion = "0.0.0"\nedition = "2021"\n\n'
            f'[dependencies]\n{crate} = "={version}"\n\n[workspace]\n')
        run(["cargo", "fetch", "--quiet"], cwd=fetcher)
        # cargo fetch downloads the .crate; unpacking happens when something builds it.
        run(["cargo", "metadata", "--format-version", "1", "--quiet"], cwd=fetcher, stdout=subprocess.DEVNULL)
        found = sorted(cargo_home.glob(f"registry/src/*/{crate}-{version}"))
    if not found:
        raise SystemExit(f"could not fetch the source of {crate} {version}")
    return found[-1]


def ensure_all() -> None:
    started = time.time()
    ensure_rust_target()
    ensure_patched_crates()
    ensure_patched_go_modules()
    ensure_go_tools()
    ensure_redis()
    ensure_wash()
    ensure_secrets_backend()
    if time.time() - started > 5:
        log(f"tools ready in {time.time() - started:.0f}s")
