"""Running versus wanted: which image each component and provider runs on each host.

wadm converges on the manifest's images, except where it cannot: a host that already
runs a component under the same id with another image refuses wadm's scale command
(`allow_update=false`) and keeps the old code for good. `up` therefore checks the
lattice's inventory against the manifest after every deploy and replaces what is stale:
a component is updated in place on its host, a provider is stopped so that wadm starts
the wanted one.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

from .procs import log
from .settings import Profile
from .washcli import wash, wash_json

# One entry of the manifest's `spec.components`: name, type, then `properties.image`.
_ENTRY = re.compile(
    r"^\s*- name: (?P<name>[\w-]+)\s*\n\s*type: (?P<type>component|capability)\s*\n"
    r"\s*properties:\s*\n\s*image: (?P<image>\S+)",
    re.M,
)


@dataclass(frozen=True)
class Running:
    host: str
    id: str
    image: str
    kind: str  # "component" or "provider"


def wadm_id(app: str, name: str) -> str:
    """The id wadm gives a manifest entry: `<app>-<name>`, the name's dashes as underscores."""
    return f"{app}-{re.sub(r'[^A-Za-z0-9_]', '_', name)}"


def wanted(profile: Profile, manifest: Path) -> dict[str, str]:
    """Entry id → image, as the manifest says."""
    return {wadm_id(profile.app, m["name"]): m["image"] for m in _ENTRY.finditer(manifest.read_text())}


def running(profile: Profile) -> list[Running]:
    """Every component and provider on every host, with the image it runs."""
    found = []
    for host in (wash_json(profile, "get", "hosts") or {}).get("hosts", []):
        for inventory in (wash_json(profile, "get", "inventory", host["id"]) or {}).get("inventories", []):
            for kind, key in (("component", "components"), ("provider", "providers")):
                for entry in inventory.get(key) or []:
                    found.append(Running(host["id"], entry.get("id", "?"), entry.get("image_ref") or "", kind))
    return found


def same_image(running_ref: str, wanted_ref: str) -> bool:
    """Hosts report a provider's `file://` or `wasmcloud+builtin://` ref without its scheme."""
    plain = lambda ref: ref.removeprefix("file://").removeprefix("wasmcloud+builtin://")  # noqa: E731
    return plain(running_ref) == plain(wanted_ref)


def stale(profile: Profile, manifest: Path) -> list[Running]:
    """What runs under a manifest entry's id with an image the manifest does not name."""
    want = wanted(profile, manifest)
    return [r for r in running(profile) if r.id in want and not same_image(r.image, want[r.id])]


def replace_stale(profile: Profile, manifest: Path, timeout: float = 120) -> None:
    """Replaces every stale component and provider until none is left (or fails after
    `timeout` seconds, naming them)."""
    want = wanted(profile, manifest)
    deadline = time.time() + timeout
    while old := stale(profile, manifest):
        if time.time() > deadline:
            names = ", ".join(f"{r.id} on {r.host[:8]} runs {short(r.image)}" for r in old)
            raise SystemExit(f"stale images still running after {timeout:.0f}s: {names}; "
                             f"`./ticketing status --profile {profile.name}` shows running vs wanted")
        for r in old:
            log(f"{r.id} on host {r.host[:8]} runs {short(r.image)}, the manifest wants {short(want[r.id])}: replacing it")
            if r.kind == "component":
                wash(profile, "update", "component", "--host-id", r.host, r.id, want[r.id], check=False, timeout=120)
            else:
                wash(profile, "stop", "provider", "--host-id", r.host, r.id, check=False, timeout=60)
        time.sleep(3)


def short(image: str) -> str:
    """An image ref without its directory, e.g. `auth-1a2b3c4d5e6f.wasm`."""
    return image.rsplit("/", 1)[-1] if image else "(none)"


def report(profile: Profile, manifest: Path) -> list[str]:
    """Lines of `status`: per entry, the wanted image and what each host runs."""
    want = wanted(profile, manifest)
    runs = running(profile)
    lines = []
    for entry_id, image in sorted(want.items()):
        mine = [r for r in runs if r.id == entry_id]
        where = ", ".join(f"{r.host[:8]} {'ok' if same_image(r.image, image) else 'STALE ' + short(r.image)}"
                          for r in mine)
        lines.append(f"    {entry_id:<30} wants {short(image):<40} {where or 'not running'}")
    return lines
