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
from .washcli import PATIENT, wash


# The backend behind each secrets policy of wadm.yaml (`spec.policies`).
SECRET_BACKENDS = {"nats-kv": "nats-kv"}


def named_entries(manifest_text: str) -> list[tuple[str, str, str, dict[str, str]]]:
    """Every `- name: ...` entry with `properties:` in the manifest, as (the application
    component or provider it belongs to, the list it is in: `config` or `secrets`, its
    name, its properties). Read line by line, so `up` needs no YAML library; lists may be
    indented under their key (as in wadm.yaml) or not (as YAML dumpers write them)."""
    lines = [line for line in manifest_text.splitlines() if line.strip() and not line.strip().startswith("#")]
    found = []
    entity = ""
    for i, line in enumerate(lines[:-1]):
        name = re.match(r"^\s*- name: (\S+)\s*$", line)
        if not name:
            continue
        parent = _parent_key(lines, i)
        if parent == "components":
            entity = name.group(1)
        if lines[i + 1].strip() != "properties:":
            continue
        properties = {}
        for entry in lines[i + 2:]:
            if _indent(entry) <= _indent(lines[i + 1]):
                break
            key, _, value = entry.strip().partition(":")
            properties[key.strip()] = value.strip().strip('"').strip("'")
        found.append((entity, parent, name.group(1), properties))
    return found


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _parent_key(lines: list[str], i: int) -> str:
    """The key whose list holds the item on line `i`."""
    for line in reversed(lines[:i]):
        text = line.strip()
        if _indent(line) < _indent(lines[i]) or (
                _indent(line) == _indent(lines[i]) and not text.startswith("-") and text.endswith(":")):
            return text.removesuffix(":")
    return ""


def inline_configs(manifest: Path) -> dict[str, dict[str, str]]:
    """Config name → properties, for every config with properties in the manifest."""
    return {name: properties for _, kind, name, properties in named_entries(manifest.read_text()) if kind != "secrets"}


def ensure_inline_configs(profile: Profile, manifest: Path) -> list[str]:
    """Puts back every inline config and secret reference of the manifest that the
    lattice no longer has; returns their names.

    Secret references (`SECRET_<app>-<name>`, what wadm puts for a `secrets:` entry) go
    missing the same way, and a component then fails to start with "Secret config ...
    not found"; they are put back with `wash secrets put` (wash refuses `config put` for
    them)."""
    missing = []
    for _, kind, name, properties in named_entries(manifest.read_text()):
        entry = wadm_id(profile.app, name)
        if kind == "secrets":
            if wash(profile, "secrets", "get", *PATIENT, entry, check=False).returncode == 0:
                continue
            log(f"secret reference {entry} is missing; putting it from {manifest.name}")
            wash(profile, "secrets", "put", *PATIENT, entry, SECRET_BACKENDS[properties["policy"]], properties["key"])
        else:
            if not properties or wash(profile, "config", "get", *PATIENT, entry, check=False).returncode == 0:
                continue
            log(f"named config {entry} is missing; putting it from {manifest.name}")
            wash(profile, "config", "put", *PATIENT, entry, *(f"{k}={v}" for k, v in properties.items()))
        missing.append(entry)
    return missing
