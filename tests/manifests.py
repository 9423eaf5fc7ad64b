"""Deploying changed versions of the application's manifest during a test, as a deployer
would with `wash app deploy`, and putting the original back."""
from __future__ import annotations

import contextlib

import yaml

from lattice.deploy import deploy, wait_until_deployed
from lattice.manifest import manifest_for
from lattice.washcli import wash


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


@contextlib.contextmanager
def deployed(profile, name: str, edit):
    """Deploys the manifest as changed by `edit(doc)`; the original again on exit."""
    doc = yaml.safe_load(manifest_for(profile).read_text())
    edit(doc)
    path = profile.state_dir / f"wadm-{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    try:
        wash(profile, "app", "deploy", str(path))
        wait_until_deployed(profile)
        yield
    finally:
        deploy(profile)
        wait_until_deployed(profile)
