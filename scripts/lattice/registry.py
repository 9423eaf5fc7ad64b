"""The lattice's OCI registry: where hosts load every component and provider from.

`up` starts a registry (CNCF distribution, `registry serve`, storing under the profile's
data dir) and pushes each artifact of ./build with `wash push`, tagged with a digest of its
content: a rebuilt component is a new tag (and so a new image for wadm to roll out), an
unchanged one is not pushed again. Hosts reach it over HTTP on 127.0.0.1
(`WASMCLOUD_OCI_ALLOWED_INSECURE`); a registry on another machine is named the same way.
(crane's `registry serve`, tried first, answers uploads without the `Location` header
that `wash push` needs.)
"""
from __future__ import annotations

import hashlib
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

from .install import wash_path
from .procs import log
from .settings import Profile

#: Repository prefix of our artifacts in the registry.
NAMESPACE = "ticketing"


def address(profile: Profile) -> str:
    return f"{profile.address}:{profile.ports['registry']}"


def tag_for(artifact: Path) -> str:
    """The tag of an artifact: a digest of its content."""
    return hashlib.sha256(artifact.read_bytes()).hexdigest()[:12]


def has(profile: Profile, name: str, tag: str) -> bool:
    url = f"http://{address(profile)}/v2/{NAMESPACE}/{name}/manifests/{tag}"
    request = urllib.request.Request(url, method="HEAD", headers={
        "accept": "application/vnd.oci.image.manifest.v1+json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as reply:
            return reply.status == 200
    except (urllib.error.URLError, OSError):
        return False


def push(profile: Profile, artifact: Path, name: str, tag: str | None = None) -> str:
    """Pushes `artifact` as `<registry>/ticketing/<name>:<tag>` (the content's digest by
    default) unless it is there already; returns the reference."""
    tag = tag or tag_for(artifact)
    ref = f"{address(profile)}/{NAMESPACE}/{name}:{tag}"
    if not has(profile, name, tag):
        log(f"pushing {artifact.name} as {ref}")
        done = subprocess.run([wash_path(), "push", ref, str(artifact), "--insecure"],
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"wash push {ref} failed (is the registry up? ./ticketing status):\n"
                             f"{done.stdout}{done.stderr}")
    return ref



def config(profile: Profile) -> Path:
    """The registry's configuration file (written at each start): where it listens and
    stores, in the profile's state."""
    path = profile.state_dir / "registry.yml"
    path.write_text(
        "version: 0.1\n"
        "log:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {profile.data_dir / 'registry'}\n"
        f"http:\n  addr: {address(profile)}\n")
    return path
