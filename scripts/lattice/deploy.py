"""Deploying the application: the named configs that live outside the manifest, `wash app
deploy` (in two steps on a fresh lattice), and waiting until wadm reports it Deployed."""
from __future__ import annotations

import os
import time
from pathlib import Path

from .configs import ensure_inline_configs
from .manifest import manifest_for, version_of, with_version, without_links
from .procs import log
from .settings import ROOT, Profile
from .washcli import PATIENT, wash, wash_json


def app_status(profile: Profile) -> str | None:
    out = wash_json(profile, "app", "status", profile.app)
    try:
        return out["status"]["status"]["type"]
    except (TypeError, KeyError):
        return None


# Named configs that held secrets before they moved to the secrets backend: deleted,
# so that no lattice upgraded in place keeps a key in config.
RETIRED_CONFIGS = ["ticketing-session", "ticketing-nats"]


def stripe_api_base(profile: Profile) -> str:
    """Stripe's API when a real test-mode key is given (TICKETING_STRIPE_SECRET_KEY), else
    the local stripe-mock; `TICKETING_STRIPE_API_BASE` overrides it (the end-to-end tests
    put a decline-simulating front before stripe-mock)."""
    base = "https://api.stripe.com" if os.environ.get("TICKETING_STRIPE_SECRET_KEY") else \
        f"http://{profile.address}:{profile.ports['stripe_mock']}"
    return os.environ.get("TICKETING_STRIPE_API_BASE", base)


def deploy_in_two_steps(profile: Profile) -> Path:
    """A first deployment starts everything without links, then the links are put.

    A link put while a provider process is starting can miss it (the host hands the
    provider the links it has at start; the provider subscribes to new ones a moment
    later), and wadm never puts a stored link again. With the providers running first,
    no link arrives in that moment."""
    manifest = deploy(profile, links=False)
    wait_until_deployed(profile)
    time.sleep(2)
    # The links' own configs first: wadm puts a link and its config at the same moment,
    # the host refuses a link whose config it cannot find yet, and wadm tries again
    # only when the source provider reports its health, which the hosts' built-in HTTP
    # server never does (its routes stayed unlinked).
    ensure_inline_configs(profile, manifest)
    log("deploying the links")
    deploy_file(profile, manifest)
    return manifest


def endpoint_configs(profile: Profile) -> dict[str, dict[str, str]]:
    """Where this lattice's servers are, as the named configs wadm.yaml refers to (a
    deployer puts the same names with their own addresses; see README)."""
    servers = profile.address
    # Every machine listens on its own addresses; hosts sharing one listen on loopback.
    listen = "0.0.0.0" if profile.machines else "127.0.0.1"
    return {
        # No `writes_at_once`: our FerretDB queues the writers of each SQLite file itself
        # (patches/ferretdb-v1.24.2-write-turns.patch), holding only the SQL statements.
        "ticketing-mongo": {"uri": f"mongodb://{servers}:{profile.ports['ferretdb']}"},
        "ticketing-redis": {"redis_url": f"redis://{servers}:{profile.ports['redis']}"},
        "ticketing-http": {"default_address": f"{listen}:{profile.ports['http']}"},
        # The web component calls the API on its own host.
        "ticketing-web": {"api_base": f"http://127.0.0.1:{profile.ports['http']}"},
        "ticketing-stripe": {"api_base": stripe_api_base(profile)},
    }


def put_configs(profile: Profile) -> None:
    """The named configs that live outside the manifest (a host must be running)."""
    for name in RETIRED_CONFIGS:
        wash(profile, "config", "del", *PATIENT, name, check=False)
    for name, properties in endpoint_configs(profile).items():
        wash(profile, "config", "put", *PATIENT, name, *(f"{k}={v}" for k, v in properties.items()))


def deploy_file(profile: Profile, path: Path) -> None:
    """`wash app deploy` of a manifest file; a version wadm already stores (wadm refuses
    to store one twice) is deployed by name and version instead."""
    version = version_of(path.read_text())
    stored = wash(profile, "app", "deploy", str(path), check=False)
    if stored.returncode == 0:
        return
    if version and "already exists" in stored.stdout + stored.stderr:
        # From the state dir: in the repository root wash would take the name for the
        # `ticketing` script (a file) and refuse it.
        wash(profile, "app", "deploy", profile.app, version, cwd=profile.state_dir)
        return
    raise SystemExit(f"wash app deploy {path} failed:\n{stored.stdout}{stored.stderr}")


def deploy(profile: Profile, links: bool = True) -> Path:
    """Deploys the manifest (without its link traits when `links` is false); returns the
    full rendered manifest."""
    manifest = manifest_for(profile)
    if not links:
        first = profile.state_dir / "wadm-without-links.yaml"
        text = manifest.read_text()
        first.write_text(with_version(without_links(text), f"{version_of(text)}-without-links"))
        log("deploying without links first, so every provider is listening before its links come")
        deploy_file(profile, first)
        return manifest
    log(f"deploying {manifest.relative_to(ROOT)} (version {version_of(manifest.read_text())}) with wash app deploy")
    deploy_file(profile, manifest)
    return manifest


def wait_until_deployed(profile: Profile, timeout: float = 300, manifest: Path | None = None) -> None:
    """Waits for wadm to report the application Deployed; meanwhile puts back any inline
    config of the deployed manifest (the rendered one unless given) that wadm's clean-up
    of the version before deleted (a component whose config is missing never scales)."""
    deadline = time.time() + timeout
    last = None
    next_config_check = time.time() + 5
    manifest = manifest or profile.state_dir / "wadm.yaml"
    while time.time() < deadline:
        status = app_status(profile)
        if status != last:
            log(f"application {profile.app}: {status or 'unknown'}")
            last = status
        if status == "deployed":
            return
        if time.time() >= next_config_check and manifest.exists():
            ensure_inline_configs(profile, manifest)
            next_config_check = time.time() + 5
        time.sleep(1)
    detail = wash(profile, "app", "status", profile.app, check=False).stdout
    raise SystemExit(f"{profile.app} not deployed after {timeout:.0f}s:\n{detail}\nlogs: {profile.log_dir}")
