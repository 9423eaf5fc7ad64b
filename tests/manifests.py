"""Deploying changed versions of the application's manifest during a test, as a deployer
would with `wash app deploy`, and putting the original back."""
from __future__ import annotations

import contextlib
import time
import uuid

import yaml

from lattice.deploy import deploy, deploy_file, wait_until_deployed
from lattice.images import wadm_id
from lattice.manifest import manifest_for
from lattice.washcli import wash, wash_json

SECRETS_POLICY = {"name": "nats-kv", "type": "policy.secret.wasmcloud.dev/v1alpha1", "properties": {"backend": "nats-kv"}}


def image_of(profile, component: str) -> str:
    """The image the deployed application runs for `component` (in the lattice's registry)."""
    doc = yaml.safe_load((profile.state_dir / "wadm.yaml").read_text())
    return next(c["properties"]["image"] for c in doc["spec"]["components"] if c["name"] == component)


def probe_component(name: str, image: str, secrets: list[str] = ()) -> dict:
    """One instance of a component, given the named secrets of the lattice's backend."""
    properties: dict = {"image": image}
    if secrets:
        properties["secrets"] = [{"name": key, "properties": {"policy": "nats-kv", "key": key}} for key in secrets]
    return {"name": name, "type": "component", "properties": properties,
            "traits": [{"type": "spreadscaler", "properties": {"instances": 1}}]}


@contextlib.contextmanager
def probe_app(profile, components: list[dict]):
    """Deploys a small application of its own (`probe`) beside ticketing, and deletes it
    on exit. Yields a function giving each component's scaler status ({type, message})."""
    doc = {"apiVersion": "core.oam.dev/v1beta1", "kind": "Application",
           "metadata": {"name": "probe", "annotations": {"version": f"v{time.time_ns()}"}},
           "spec": {"policies": [SECRETS_POLICY], "components": components}}
    path = profile.state_dir / "probe.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))

    def statuses() -> dict[str, dict]:
        found = (wash_json(profile, "app", "status", "probe") or {}).get("status", {}).get("scalers", [])
        return {s["name"].removeprefix("probe-"): s["status"] for s in found}

    try:
        wash(profile, "app", "deploy", str(path))
        yield statuses
    finally:
        wash(profile, "app", "undeploy", "probe", check=False)
        wash(profile, "app", "delete", "probe", check=False)


def without_component(doc: dict, component: str) -> None:
    """Removes a component and every link to it."""
    spec = doc["spec"]["components"]
    spec[:] = [c for c in spec if c["name"] != component]
    for c in spec:
        c["traits"] = [t for t in c.get("traits", [])
                       if not (t["type"] == "link" and t["properties"]["target"]["name"] == component)]


def set_config(doc: dict, component: str, config: str, **values: str) -> None:
    """Sets properties of a component's named config."""
    target = next(c for c in doc["spec"]["components"] if c["name"] == component)
    entry = next(c for c in target["properties"]["config"] if c["name"] == config)
    entry.setdefault("properties", {}).update(values)


def put_inline_configs(profile, doc: dict) -> None:
    """Puts every named config the manifest defines inline (components' and links'), as
    wadm will: wadm writes a changed one in its own time, racing the clean-up of the
    version before, so a test would otherwise meet the old values for a while."""
    for component in doc["spec"]["components"]:
        configs = list(component["properties"].get("config", []))
        for trait in component.get("traits", []):
            if trait["type"] == "link":
                for end in ("source", "target"):
                    configs += (trait["properties"].get(end) or {}).get("config", [])
        for config in configs:
            if config.get("properties"):
                wash(profile, "config", "put", wadm_id(profile.app, config["name"]),
                     *(f"{k}={v}" for k, v in config["properties"].items()))


@contextlib.contextmanager
def deployed(profile, name: str, edit):
    """Deploys the manifest as changed by `edit(doc)`; the original again on exit."""
    original = yaml.safe_load(manifest_for(profile).read_text())
    doc = yaml.safe_load(manifest_for(profile).read_text())
    edit(doc)
    # A version of its own, as a deployer gives each changed manifest.
    annotations = doc["metadata"]["annotations"]
    annotations["version"] = f"{annotations['version']}-{name}-{uuid.uuid4().hex[:6]}"
    path = profile.state_dir / f"wadm-{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    try:
        deploy_file(profile, path)
        wait_until_deployed(profile, manifest=path)
        put_inline_configs(profile, doc)
        yield
    finally:
        deploy(profile)
        wait_until_deployed(profile)
        put_inline_configs(profile, original)
