"""The named configs a manifest defines inline, and putting back any that went missing.

wadm puts a manifest's inline configs (`config: - name: ..., properties: ...`) as
`<app>-<name>`. Across a redeploy it can delete one that the new version still uses
(seen: `auth-limits`, `orders-settings` gone after `up` replaced changed components); the
instances already running keep working, but every restart of the component then fails
with "Config ... does not exist". `up` (after each deploy) and the supervisor (after it
restarts a host) put back whatever is missing, with the manifest's values.
"""
from __future__ import annotations

import re
from pathlib import Path

from .images import wadm_id
from .procs import log
from .settings import Profile
from .washcli import wash


def inline_configs(manifest: Path) -> dict[str, dict[str, str]]:
    """Config name → properties, for every config with properties in the manifest."""
    lines = [line for line in manifest.read_text().splitlines() if line.strip() and not line.strip().startswith("#")]
    found: dict[str, dict[str, str]] = {}
    for i, line in enumerate(lines[:-1]):
        name = re.match(r"^(\s*)- name: (\S+)\s*$", line)
        if not name or lines[i + 1].strip() != "properties:":
            continue
        indent = len(lines[i + 1]) - len(lines[i + 1].lstrip())
        properties = {}
        for entry in lines[i + 2:]:
            if len(entry) - len(entry.lstrip()) <= indent:
                break
            key, _, value = entry.strip().partition(":")
            properties[key.strip()] = value.strip().strip('"').strip("'")
        found[name.group(2)] = properties
    return found


def ensure_inline_configs(profile: Profile, manifest: Path) -> list[str]:
    """Puts back every inline config of the manifest that the lattice no longer has;
    returns their names."""
    missing = []
    for name, properties in inline_configs(manifest).items():
        config = wadm_id(profile.app, name)
        if wash(profile, "config", "get", config, check=False).returncode == 0:
            continue
        log(f"named config {config} is missing; putting it from {manifest.name}")
        wash(profile, "config", "put", config, *(f"{k}={v}" for k, v in properties.items()))
        missing.append(config)
    return missing
