"""The JWT key and the Stripe key are wasmCloud secrets (README, "Secrets"): the lattice's
secrets backend hands each only to the signed entities it is mapped to, and neither sits
in named config, the manifest or a log."""
from __future__ import annotations

import subprocess

from helpers import eventually
from lattice import secret_store
from lattice.settings import ROOT, TOOLS_BIN
from lattice.washcli import wash_json
from manifests import image_of, probe_app, probe_component


def nats_cli(profile, *args: str) -> str:
    return nats_bytes(profile, *args).decode()


def nats_bytes(profile, *args: str) -> bytes:
    done = subprocess.run([str(TOOLS_BIN / "nats"), "-s", f"nats://127.0.0.1:{profile.ports['nats']}", *args],
                          capture_output=True, timeout=30)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_no_secret_sits_in_named_config_the_manifest_or_a_log(running_lattice):
    profile = running_lattice
    values = secret_store.values(profile)
    # Every named config of the lattice, as the hosts store them.
    bucket = f"CONFIGDATA_{profile.lattice}"
    configs = {name: nats_cli(profile, "kv", "get", bucket, name, "--raw") for name in nats_cli(profile, "kv", "ls", bucket).split()}
    assert "ticketing-stripe" in configs and "ticketing-auth_limits" in configs, sorted(configs)
    assert "ticketing-session" not in configs, "the old home of the JWT key is gone"
    manifests = [(ROOT / "wadm.yaml").read_text(), (profile.state_dir / "wadm.yaml").read_text()]
    logs = {path.name: path.read_bytes() for path in profile.log_dir.glob("*.log")}
    assert {"host-1.log", "secrets.log", "wadm.log", "nats.log"} <= set(logs)
    # Stored encrypted: not even the backend's bucket holds a value in the clear.
    stored = nats_bytes(profile, "kv", "get", "WASMCLOUD_SECRETS", "jwt_key", "--raw")
    for name, value in values.items():
        assert len(value) >= 32, name
        assert value.encode() not in stored, f"{name} stored in the clear"
        assert not [c for c, text in configs.items() if value in text], f"{name} in named config"
        assert not [m for m in manifests if value in m], f"{name} in the manifest"
        assert not [log for log, text in logs.items() if value.encode() in text], f"{name} in a log"


def test_only_an_entity_mapped_to_a_secret_can_read_it(running_lattice):
    """The same request for `jwt_key` from two signed components: auth's identity is
    mapped to it, expiration's is not, so the host gets the key for one and is refused
    for the other (and does not start it)."""
    profile = running_lattice
    components = [probe_component("mapped", image_of(profile, "auth"), secrets=["jwt_key"]),
                  probe_component("unmapped", image_of(profile, "expiration"), secrets=["jwt_key"])]
    with probe_app(profile, components) as statuses:
        def settled():
            found = statuses()
            types = {name: status["type"] for name, status in found.items()}
            return found if types == {"mapped": "deployed", "unmapped": "failed"} else None

        found = eventually(settled, timeout=60, interval=1, what="the mapped probe deployed and the unmapped one refused")
        assert "unauthorized" in found["unmapped"]["message"], found
        running = {c["id"] for host in wash_json(profile, "get", "inventory")["inventories"] for c in host["components"]}
        assert "probe-mapped" in running and "probe-unmapped" not in running, running
