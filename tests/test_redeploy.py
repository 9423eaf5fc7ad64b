"""Redeploys converge: after a rebuild, `down` + `up` serves the new code on every host,
whatever wadm held from the previous run, and a stale image is replaced by `up`."""
from __future__ import annotations

import shutil
import uuid

from client import Client
from lattice import build, images, lattice
from lattice.deploy import app_status
from lattice.settings import BUILD_DIR
from lattice.washcli import wash


def builds_answering(profile, requests: int = 40) -> set[str]:
    """The `x-ticketing-build` of auth's answers to `requests` calls."""
    client = Client(profile.http_url)
    return {client.get("/api/users/currentuser").headers.get("x-ticketing-build", "") for _ in range(requests)}


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

        # A host left running an old image (wadm would not move it) is put right by `up`.
        host = next(r.host for r in images.running(profile) if r.id == "ticketing-auth")
        wash(profile, "update", "component", "--host-id", host, "ticketing-auth", next(iter(old_images)),
                     timeout=120)
        assert images.stale(profile, manifest), "the old image should run again before up"
        lattice.up(profile)
        assert images.stale(profile, manifest) == []
        assert builds_answering(profile) == {tag}
    finally:
        # The rest of the suite (and the next build) gets the untagged artifact back.
        shutil.copy2(kept, original)
