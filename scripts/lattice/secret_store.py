"""The lattice's secrets: wasmCloud's NATS KV secrets backend (`secrets-nats-kv`), the
values it holds, and who may read them.

The backend runs beside NATS (process `secrets`) and keeps every value encrypted in the
JetStream bucket `WASMCLOUD_SECRETS`. Hosts ask it for an entity's secrets (wadm.yaml:
`secrets:` under a component or provider, with the `nats-kv` policy) when they start the
entity, proving who asks with the entity's signed JWT; the backend answers only for the
secrets mapped to that entity's public key. So a secret reaches exactly the components
and providers wadm.yaml gives it to, and nothing secret sits in named config, in the
manifest or in a log.

The values:
- `jwt_key`: signs sessions; `TICKETING_JWT_KEY`, else random, kept in the state dir.
- `stripe_secret_key`: `TICKETING_STRIPE_SECRET_KEY` (a Stripe test-mode key), else a
  random `sk_test_` key for the local stripe-mock (which takes any), kept likewise.

The backend's two xkeys (encryption at rest, transit) are made once per profile and kept
(mode 600) in its state dir, like the hosts' keys.
"""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
from pathlib import Path

from .configs import named_entries
from .install import wash_path
from .procs import log
from .settings import BUILD_DIR, TOOLS_BIN, Profile

BACKEND = str(TOOLS_BIN / "secrets-nats-kv")
# The subject prefix hosts and the backend agree on (the backend's default).
TOPIC = "wasmcloud.secrets"


def _kept(path: Path, make) -> str:
    """The value kept in `path` (mode 600), made by `make()` the first time."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(make())
    return path.read_text().strip()


def _xkey_seed(profile: Profile, purpose: str) -> str:
    def make() -> str:
        made = subprocess.run([wash_path(), "keys", "gen", "curve", "--output", "json"],
                              capture_output=True, text=True, check=True)
        return json.loads(made.stdout)["seed"]
    return _kept(profile.state_dir / "keys" / f"secrets-{purpose}.xkey", make)


def backend_env(profile: Profile) -> dict[str, str]:
    """The environment the backend runs with (and its CLI needs to put a secret)."""
    return dict(os.environ, ENCRYPTION_XKEY_SEED=_xkey_seed(profile, "encryption"),
                TRANSIT_XKEY_SEED=_xkey_seed(profile, "transit"))


def backend_argv(profile: Profile) -> list[str]:
    return [BACKEND, "run", "--nats-address", f"{profile.address}:{profile.ports['nats']}"]


def values(profile: Profile) -> dict[str, str]:
    """Every secret the application uses, by name."""
    jwt_key = os.environ.get("TICKETING_JWT_KEY") or _kept(profile.state_dir / "jwt_key", lambda: secrets.token_urlsafe(48))
    stripe_key = os.environ.get("TICKETING_STRIPE_SECRET_KEY") or _kept(
        profile.state_dir / "stripe_secret_key", lambda: f"sk_test_{secrets.token_hex(24)}")
    return {"jwt_key": jwt_key, "stripe_secret_key": stripe_key}


def readers(manifest_text: str) -> dict[str, list[str]]:
    """Who reads which secret, as wadm.yaml maps them: artifact name -> secret keys."""
    found: dict[str, list[str]] = {}
    for entity, kind, _, properties in named_entries(manifest_text):
        if kind == "secrets":
            found.setdefault(entity, []).append(properties["key"])
    return found


def public_key(name: str) -> str:
    """The signed identity of built artifact `name`: a component's or a provider's key."""
    wasm, par = BUILD_DIR / f"{name}.wasm", BUILD_DIR / f"{name}.par.gz"
    artifact = wasm if wasm.exists() else par
    inspected = json.loads(subprocess.run([wash_path(), "inspect", str(artifact), "-o", "json"],
                                          capture_output=True, text=True, check=True).stdout)
    return inspected.get("component") or inspected["service"]


def _cli(profile: Profile, *args: str, env: dict[str, str] | None = None, timeout: float = 60) -> None:
    """Runs a backend CLI command, retrying while the backend is not answering yet."""
    argv = [BACKEND, *args, "--nats-address", f"{profile.address}:{profile.ports['nats']}"]
    deadline = time.time() + timeout
    while True:
        done = subprocess.run(argv, env=env or dict(os.environ), capture_output=True, text=True)
        if done.returncode == 0:
            return
        if time.time() > deadline:
            raise SystemExit(f"secrets-nats-kv {args[0]} failed:\n{done.stderr[-2000:]}\n"
                             f"Is the backend running? See {profile.log_dir / 'secrets.log'}")
        time.sleep(0.5)


def put(profile: Profile, name: str, value: str) -> None:
    """Stores secret `name`; the value goes to the CLI in its environment, never in argv."""
    _cli(profile, "put", name, env=dict(backend_env(profile), SECRET_STRING_VALUE=value))


def allow(profile: Profile, reader: str, keys: list[str]) -> None:
    """Lets the entity with public key `reader` read secrets `keys`."""
    _cli(profile, "add-mapping", reader, *[arg for key in keys for arg in ("--secret", key)])


def ensure_secrets(profile: Profile, manifest_text: str) -> None:
    """Puts every secret and maps each to the artifacts wadm.yaml gives it to (the
    backend must be running; the artifacts built and signed)."""
    for name, value in values(profile).items():
        put(profile, name, value)
    for artifact, keys in readers(manifest_text).items():
        allow(profile, public_key(artifact), keys)
    log(f"secrets stored in the lattice's secrets backend: {', '.join(values(profile))}")
