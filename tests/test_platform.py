"""The walking skeleton: the lattice comes up from the repo, wadm deploys the manifest,
and requests reach the auth component through the hosts' built-in HTTP server."""
from __future__ import annotations

from helpers import eventually
from lattice.deploy import app_status
from lattice.manifest import version_of
from lattice.settings import git_revision
from lattice.washcli import wash, wash_json


def test_application_is_deployed_according_to_wash(running_lattice):
    assert app_status(running_lattice) == "deployed"
    listed = wash_json(running_lattice, "app", "list")
    names = [app["name"] for app in listed["applications"]]
    assert running_lattice.app in names


def test_the_deployed_version_is_the_builds_and_wash_lists_it(running_lattice):
    """`wash app history` names versions a platform team can read: the build's commit and
    a digest of what was deployed, not ULIDs."""
    deployed = version_of((running_lattice.state_dir / "wadm.yaml").read_text())
    assert deployed and deployed.startswith(git_revision().removesuffix("-dirty")), deployed
    history = wash(running_lattice, "app", "history", running_lattice.app).stdout
    row = next((line.split() for line in history.splitlines() if deployed in line.split()), None)
    assert row == [deployed, "true"], history  # listed, and the one deployed


def test_every_component_and_provider_is_signed_and_loaded_from_the_registry(running_lattice):
    """Signed artifacts carry their names into the inventory (unsigned ones show `N/A`),
    and hosts load them from the lattice's OCI registry, not from a shared path."""
    from lattice import registry

    where = f"{registry.address(running_lattice)}/{registry.NAMESPACE}/"
    for host in wash_json(running_lattice, "get", "hosts")["hosts"]:
        inventory = wash_json(running_lattice, "get", "inventory", host["id"])["inventories"][0]
        for entry in inventory["components"] + inventory["providers"]:
            if entry["image_ref"].startswith(("wasmcloud+builtin://", "http-")):
                continue  # the host's built-in providers
            assert entry["image_ref"].startswith(where), entry
            assert entry.get("name") not in (None, "", "N/A"), entry
        names = {c["name"] for c in inventory["components"]}
        assert {"auth", "tickets", "orders", "payments", "web", "expiration"} <= names, names


def test_hosts_refuse_to_load_a_file_from_their_disk(running_lattice):
    """Hosts load only from the registry (wash.toml `allow_file_load = false`): the very
    artifact the registry serves is refused as a `file://` path."""
    from lattice.settings import BUILD_DIR
    from manifests import probe_app, probe_component

    with probe_app(running_lattice, [probe_component("disk", f"file://{BUILD_DIR / 'web.wasm'}")]) as statuses:
        eventually(lambda: statuses().get("disk", {}).get("type") == "failed", timeout=60, interval=1,
                   what="the file:// image to be refused")
    logs = "".join((running_lattice.log_dir / f"{host}.log").read_text() for host in ("host-1", "host-2"))
    assert "file loading is disabled" in logs


def test_every_host_joined_the_lattice(running_lattice):
    hosts = wash_json(running_lattice, "get", "hosts")["hosts"]
    assert len(hosts) == running_lattice.hosts


def test_every_host_serves_http_and_runs_every_component_it_routes_to(running_lattice):
    """A host's built-in HTTP server reaches only the components on that host."""
    routed = {"ticketing-auth", "ticketing-tickets", "ticketing-orders", "ticketing-payments", "ticketing-web"}
    for host in wash_json(running_lattice, "get", "hosts")["hosts"]:
        inventory = wash_json(running_lattice, "get", "inventory", host["id"])["inventories"][0]
        assert "ticketing-http_server" in {p["id"] for p in inventory["providers"]}, host["id"]
        assert routed <= {c["id"] for c in inventory["components"]}, host["id"]


def test_anonymous_current_user_is_null(client):
    reply = client.get("/api/users/currentuser")
    assert reply.status == 200
    assert reply.headers["content-type"] == "application/json"
    assert reply.json() == {"currentUser": None}


def test_unknown_api_path_of_a_service_is_a_json_404(client):
    reply = client.get("/api/users/doesnotexist")
    assert reply.status == 404
    assert reply.json() == {"errors": [{"message": "Not Found"}]}


def test_path_no_component_serves_is_a_json_404(client):
    reply = client.get("/api/nothing-here")
    assert reply.status == 404
    assert reply.json() == {"errors": [{"message": "Not Found"}]}


def test_body_over_the_limit_is_refused(client):
    reply = client.post("/api/users/signup", raw=b"x" * (1024 * 1024 + 1000))
    assert reply.status == 413
    assert reply.error_messages == ["Request body is too large"]
