"""The manifest as a profile deploys it: `wadm.yaml` rendered with content-named
artifacts and the profile's ports, and the same without its links (a fresh lattice's
first deployment step)."""
from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

from .settings import ROOT, Profile, dev_ports


def manifest_for(profile: Profile) -> Path:
    """wadm.yaml as this profile deploys it (`.ticketing/<profile>/wadm.yaml`).

    Each `file://./build/<artifact>` becomes a copy named by its content
    (`.ticketing/<profile>/artifacts/<name>-<sha>.<ext>`): after a rebuild wadm sees a new
    image and replaces the component or provider in the running lattice, while an
    unchanged one is left alone. Non-dev profiles also get their own ports.
    """
    text = profile.manifest.read_text()
    artifacts = profile.state_dir / "artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)

    def versioned(match: re.Match) -> str:
        source = ROOT / "build" / match.group(1)
        if not source.exists():
            raise SystemExit(f"{source} is missing: run ./ticketing build")
        digest = hashlib.sha256(source.read_bytes()).hexdigest()[:12]
        name, ext = source.name.split(".", 1)
        target = artifacts / f"{name}-{digest}.{ext}"
        if not target.exists():
            shutil.copy2(source, target)
        return f"file://{target}"

    text = re.sub(r"file://\./build/([\w-]+\.[\w.]+)", versioned, text)
    if profile.name != "dev":
        for key, port in dev_ports().items():
            text = text.replace(f"127.0.0.1:{port}", f"127.0.0.1:{profile.ports[key]}")
    rendered = profile.state_dir / "wadm.yaml"
    rendered.write_text(text)
    return rendered


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
