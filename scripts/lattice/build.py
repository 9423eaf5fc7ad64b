"""Builds the native lattice pieces and the wasm components, and packages providers.

Outputs land in ./build (what wadm.yaml points at); the cargo target dir is kept
outside the clone (~/.cache/ticketing/target) so repeated runs are incremental.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

from .install import wash_path
from .procs import log
from .settings import BUILD_DIR, ROOT, TARGET_DIR

def components() -> list[str]:
    """Component crates: those that build a `cdylib` (service logic not yet wired is a plain library)."""
    return sorted(p.name for p in (ROOT / "components").iterdir()
                  if (p / "Cargo.toml").exists()
                  and re.search(r'^crate-type\s*=.*"cdylib"', (p / "Cargo.toml").read_text(), re.M))


def providers() -> list[str]:
    """Provider crates that build a provider binary (a library-only crate is not one yet)."""
    return sorted(p.name for p in (ROOT / "providers").iterdir() if (p / "src" / "main.rs").exists())


def cargo(args: list[str], env: dict[str, str] | None = None) -> None:
    full_env = dict(os.environ, CARGO_TARGET_DIR=str(TARGET_DIR), **(env or {}))
    subprocess.run(["cargo", *args], cwd=ROOT, env=full_env, check=True)


# The cargo profile of everything native (Cargo.toml: optimised for speed at run time).
NATIVE_PROFILE = "native"


def native_dir() -> Path:
    return TARGET_DIR / NATIVE_PROFILE


def binary(name: str) -> Path:
    return native_dir() / name


def build_native() -> None:
    # Always the whole workspace: cargo unifies dependency features over the packages of
    # one invocation, so building and testing the same set (`cargo test --profile
    # native`) lets the tests reuse every dependency this build compiled.
    log(f"building the host, wadm and providers (profile {NATIVE_PROFILE}, optimised; "
        "about 19 minutes cold on 2 cores, then seconds)")
    started = time.time()
    cargo(["build", "--workspace", "--profile", NATIVE_PROFILE])
    log(f"native build done in {time.time() - started:.0f}s")


def build_components(names: list[str] | None = None, env: dict[str, str] | None = None) -> None:
    """Builds components (all by default) into ./build; `env` reaches the compiler, e.g.
    `TICKETING_BUILD_TAG` (see guest/src/http.rs)."""
    names = names or components()
    log(f"building components {', '.join(names)} (wasm32-wasip2)")
    started = time.time()
    cargo(["build", "--release", "--target", "wasm32-wasip2", *(a for n in names for a in ("-p", n))], env=env)
    BUILD_DIR.mkdir(exist_ok=True)
    for name in names:
        built = TARGET_DIR / "wasm32-wasip2" / "release" / f"{name.replace('-', '_')}.wasm"
        shutil.copy2(built, BUILD_DIR / f"{name}.wasm")
    log(f"components built in {time.time() - started:.0f}s")


def package_providers() -> None:
    BUILD_DIR.mkdir(exist_ok=True)
    for name in providers():
        bin_path = binary(name)
        par = BUILD_DIR / f"{name}.par.gz"
        if par.exists() and par.stat().st_mtime >= bin_path.stat().st_mtime:
            continue
        log(f"packaging provider archive {par.relative_to(ROOT)}")
        par.unlink(missing_ok=True)
        subprocess.run(
            [wash_path(), "par", "create", "--vendor", "ticketing", "--name", name,
             "--binary", str(bin_path), "--destination", str(par), "--compress"],
            check=True, stdout=subprocess.DEVNULL,
        )


def build_all() -> None:
    build_native()
    build_components()
    package_providers()
