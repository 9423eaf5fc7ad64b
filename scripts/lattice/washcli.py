"""Running wash against a profile's lattice."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

from .install import wash_path
from .settings import ROOT, Profile


# For wash's control requests that the first host to answer settles (config and secret
# references): wash's 2 s default ran out while the hosts of the three-machine lattice
# were busy starting (a clean-clone CI run, 2026-11-27: "Did not receive a response to
# put config request"). Not for scatter-gather ones such as `get inventory`, which wait
# out the whole timeout.
PATIENT = ("--timeout-ms", "10000")


def wash(profile: Profile, *args: str, check: bool = True, timeout: float = 60,
         cwd: Path = ROOT) -> subprocess.CompletedProcess:
    result = subprocess.run([wash_path(), *args], env=profile.wash_env(), capture_output=True, text=True,
                            timeout=timeout, cwd=cwd)
    if check and result.returncode != 0:
        raise SystemExit(f"wash {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    return result


def wash_json(profile: Profile, *args: str) -> dict | None:
    """wash's JSON answer, or None when it failed or printed no JSON."""
    result = wash(profile, *args, "--output", "json", check=False)
    if result.returncode != 0:
        return None
    try:
        return json.loads(result.stdout)
    except json.JSONDecodeError:
        return None
