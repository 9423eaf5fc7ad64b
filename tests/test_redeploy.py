"""Redeploys converge: after a rebuild, `down` + `up` serves the new code on every host,
whatever wadm held from the previous run, and a host put back on a stale image returns
to the manifest's image by itself."""
from __future__ import annotations

import json
import shutil
import time
import uuid

from client import Client
from lattice import build, images, lattice
from lattice.deploy import app_status
from lattice.nats import Nats
from lattice.settings import BUILD_DIR
from lattice.washcli import wash


def builds_answering(profile, requests: int = 40) -> set[str]:
    """The `x-ticketing-build` of auth's answers to `requests` calls."""
    client = Client(profile.http_url)
    return {client.get("/api/users/currentuser").headers.get("x-ticketing-build", "") for _ in range(requests)}


def scaled_images(bus: Nats, component: str, host: str, until, timeout: float = 60) -> list[str]:
    """The images `component` was scaled up to on `host`, in order, per the lattice's
    `component_scaled` events, until `until(images)` holds."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while not until(seen) and time.monotonic() < deadline:
        message = bus.next_message(timeout=max(0.1, deadline - time.monotonic()))
        if message is None:
            break
        data = json.loads(message[1]).get("data", {})
        if data.get("component_id") == component and data.get("host_id") == host and data.get("max_instances", 0) > 0:
            seen.append(data["image_ref"])
    return seen


def auth_images(profile) -> set[str]:
    return {r.image for r in images.running(profile) if r.id == "ticketing-auth"}


def test_down_and_up_after_a_rebuild_serves_the_new_code_on_every_host(running_lattice):
    profile = running_lattice
    original = BUILD_DIR / "auth.wasm"
    kept = profile.state_dir / "auth-before-redeploy.wasm"
    shutil.copy2(original, kept)
    tag = f"redeploy-{uuid.uuid4().hex[:8]}"
    try:
        assert tag not in builds_answering(profile)
        old_images = auth_images(profile)
        # wadm keeps the deployed manifest (with the old auth image) across `down`.
        build.build_components(["auth"], env={"TICKETING_BUILD_TAG": tag})
        lattice.down(profile)
        lattice.up(profile)

        assert builds_answering(profile) == {tag}
        manifest = profile.state_dir / "wadm.yaml"
        assert images.stale(profile, manifest) == []
        new_images = auth_images(profile)
        assert new_images and not new_images & old_images, (old_images, new_images)
        assert app_status(profile) == "deployed"

        # A host put back on an old image by hand returns to the manifest's image by
        # itself: wadm asks the host for that image, and the (patched) host updates in
        # place. The lattice's events show both moves.
        host = next(r.host for r in images.running(profile) if r.id == "ticketing-auth")
        old_image = next(iter(old_images))
        bus = Nats(profile.ports["nats"])
        try:
            bus.subscribe(f"wasmbus.evt.{profile.lattice}.component_scaled")
            wash(profile, "update", "component", "--host-id", host, "ticketing-auth", old_image, timeout=120)
            new_image = next(iter(new_images))
            scaled_to = scaled_images(bus, "ticketing-auth", host,
                                      until=lambda seen: len(seen) > 1 and images.same_image(seen[-1], new_image))
        finally:
            bus.close()
        assert images.same_image(scaled_to[0], old_image), scaled_to
        assert images.same_image(scaled_to[-1], new_image), scaled_to
        assert images.stale(profile, manifest) == []
        assert builds_answering(profile) == {tag}
    finally:
        # The rest of the suite (and the next build) gets the untagged artifact back.
        shutil.copy2(kept, original)
