"""The manifest as a profile deploys it: `wadm.yaml` with its artifacts in the lattice's
registry and a version, and the same without its links (a fresh lattice's first deployment step).

Nothing else differs between lattices: where NATS, MongoDB, Redis and the HTTP port are
lives in named configs that `up` puts (`deploy.put_configs`), so the same `wadm.yaml`
deploys to the dev lattice, the test lattice and a deployer's own."""
from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

from . import registry
from .settings import ROOT, Profile, git_revision


def manifest_for(profile: Profile) -> Path:
    """wadm.yaml as this profile deploys it (`.ticketing/<profile>/wadm.yaml`).

    Each `file://./build/<artifact>` is pushed to the lattice's registry and named there
    by a digest of its content (`127.0.0.1:<port>/ticketing/<name>:<digest>`): after a
    rebuild wadm sees a new image and replaces the component or provider in the running
    lattice, while an unchanged one is left alone. The version is the git commit and a
    digest of the rendered manifest, so each different deployment is a version of its own.
    """
    text = profile.manifest.read_text()

    def pushed(match: re.Match) -> str:
        source = ROOT / "build" / match.group(1)
        if not source.exists():
            raise SystemExit(f"{source} is missing: run ./ticketing build")
        return registry.push(profile, source, source.name.split(".", 1)[0])

    text = re.sub(r"file://\./build/([\w-]+\.[\w.]+)", pushed, text)
    for name, key, value in config_overrides():
        text = with_config(text, name, key, value)
    text = with_version(text, f"{git_revision()}-{hashlib.sha256(text.encode()).hexdigest()[:12]}")
    rendered = profile.state_dir / "wadm.yaml"
    rendered.write_text(text)
    return rendered


def config_overrides() -> list[tuple[str, str, str]]:
    """`up --config NAME.KEY=VALUE` (passed on in `TICKETING_CONFIG`, `;`-separated, so
    that the supervisor deploys the same): inline config properties to change."""
    overrides = []
    for item in filter(None, os.environ.get("TICKETING_CONFIG", "").split(";")):
        target, sep, value = item.partition("=")
        name, dot, key = target.rpartition(".")
        if not (sep and dot and name and key):
            raise SystemExit(f"--config {item!r}: expected NAME.KEY=VALUE, e.g. auth-limits.signups_per_address=100000")
        overrides.append((name, key, value))
    return overrides


def with_config(manifest: str, name: str, key: str, value: str) -> str:
    """The manifest with property `key` of its inline config `name` set to `value`
    (line-based, like `without_links`: our manifest's configs are plain block YAML)."""
    lines = manifest.splitlines(keepends=True)
    for i, line in enumerate(lines):
        if line.strip() != f"- name: {name}":
            continue
        indent = len(line) - len(line.lstrip())
        for j in range(i + 1, len(lines)):
            inner = lines[j]
            if inner.strip() and len(inner) - len(inner.lstrip()) <= indent:
                break
            if inner.strip().startswith(f"{key}:"):
                lines[j] = f"{inner[:len(inner) - len(inner.lstrip())]}{key}: {json.dumps(value)}\n"
                return "".join(lines)
        raise SystemExit(f"--config {name}.{key}: config {name!r} has no property {key!r} in the manifest")
    raise SystemExit(f"--config {name}.{key}: the manifest has no inline config named {name!r}")


def with_version(manifest: str, version: str) -> str:
    """The manifest with `metadata.annotations.version` set to `version` (what `wash app
    history` lists; wadm refuses to store one version twice with other contents)."""
    manifest = re.sub(r"(?m)^    version: .*\n", "", manifest)
    return re.sub(r"(?m)^  annotations:\n", f"  annotations:\n    version: {version}\n", manifest, count=1)


def version_of(manifest: str) -> str | None:
    found = re.search(r"(?m)^    version: (\S+)", manifest)
    return found.group(1) if found else None


def without_links(manifest: str) -> str:
    """The manifest with every `- type: link` trait removed (line-based: our manifest's
    traits are plain block YAML)."""
    kept, skip_deeper_than = [], None
    for line in manifest.splitlines(keepends=True):
        indent = len(line) - len(line.lstrip())
        if skip_deeper_than is not None:
            if not line.strip() or indent > skip_deeper_than:
                continue
            skip_deeper_than = None
        if line.strip() == "- type: link":
            skip_deeper_than = indent
            continue
        kept.append(line)
    return "".join(kept)
