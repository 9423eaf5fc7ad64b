"""Builds the native lattice pieces and the wasm components, and packages providers.

Outputs land in ./build (what wadm.yaml points at); the cargo target dir is kept
outside the clone (~/.cache/ticketing/target) so repeated runs are incremental.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import tomllib
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


# The workspace's version, signed into every component and provider.
VERSION = tomllib.loads((ROOT / "Cargo.toml").read_text())["workspace"]["package"]["version"]

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
        "about 13 minutes cold on 2 cores, then seconds)")
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
        sign_component(name, built, BUILD_DIR / f"{name}.wasm")
    log(f"components built in {time.time() - started:.0f}s")


# Signing keys of our artifacts (an account key as issuer, one key per component or
# provider as subject), made on first use and kept (mode 600) outside the repo, so every
# rebuild keeps each one's identity.
KEYS_DIR = ROOT / ".ticketing" / "signing-keys"


def signing_key(name: str, kind: str) -> Path:
    """The seed file of key `name` of `kind` (account, module or service), made once."""
    path = KEYS_DIR / f"{name}_{kind}.nk"
    if not path.exists():
        KEYS_DIR.mkdir(parents=True, exist_ok=True, mode=0o700)
        made = subprocess.run([wash_path(), "keys", "gen", kind, "--output", "json"],
                              check=True, capture_output=True, text=True)
        seed = json.loads(made.stdout)["seed"]
        path.touch(mode=0o600)
        path.write_text(seed)
    return path


def signed_by(name: str, kind: str) -> list[str]:
    return ["--issuer", str(signing_key("ticketing", "account")), "--subject", str(signing_key(name, kind)),
            "--disable-keygen"]


def sign_component(name: str, built: Path, signed: Path) -> None:
    """Signs the component as `name` into `signed` (what `wash get inventory` shows as its
    name). Only when the build changed: a signature carries its time, so signing the same
    code again would make a new image and a needless redeploy."""
    unsigned = BUILD_DIR / ".unsigned" / built.name
    if signed.exists() and unsigned.exists() and unsigned.read_bytes() == built.read_bytes():
        return
    unsigned.parent.mkdir(exist_ok=True)
    shutil.copy2(built, unsigned)
    subprocess.run(
        [wash_path(), "claims", "sign", str(unsigned), "--name", name, "--ver", VERSION, "--rev", "1",
         "--destination", str(signed), *signed_by(name, "module")],
        check=True, stdout=subprocess.DEVNULL,
    )


def package_providers() -> None:
    BUILD_DIR.mkdir(exist_ok=True)
    for name in providers():
        bin_path = binary(name)
        par = BUILD_DIR / f"{name}.par.gz"
        signed_by_us = (KEYS_DIR / f"{name}_service.nk").exists()
        if par.exists() and par.stat().st_mtime >= bin_path.stat().st_mtime and signed_by_us:
            continue
        log(f"packaging provider archive {par.relative_to(ROOT)}")
        par.unlink(missing_ok=True)
        subprocess.run(
            [wash_path(), "par", "create", "--vendor", "ticketing", "--name", name, "--version", VERSION,
             "--binary", str(bin_path), "--destination", str(par), "--compress", *signed_by(name, "service")],
            check=True, stdout=subprocess.DEVNULL,
        )


def build_all() -> None:
    build_native()
    build_components()
    package_providers()
