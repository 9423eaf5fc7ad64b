"""Traces: an OpenTelemetry backend with a UI that the profile runs when `traces` is on
(wash.toml, or `up --traces`), and the settings that make every host and provider export
to it.

The hosts get upstream's variables (`WASMCLOUD_TRACES_ENABLED`,
`OTEL_EXPORTER_OTLP_ENDPOINT`, `WASMCLOUD_OBSERVABILITY_PROTOCOL`) and hand them to the
providers they start with the host data. The host's HTTP server starts a span per
request and passes its context on with every call, the providers continue it
(`ticketing_provider_support::trace`), and an event carries it from the write that
announced it to its handlers, so one purchase is one trace.

The backend is Arize Phoenix (PyPI, version pinned in wash.toml, installed once into its
own virtualenv in the cache): it takes OTLP over HTTP and serves its UI and REST API on
the same port, keeps traces in SQLite in the profile's data dir, and runs with its
telemetry and every request to the internet off. (Jaeger was the first choice: the Go
module proxy serves Jaeger without its UI, whose assets are built from a repository the
project cannot reach.)
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

from .procs import log
from .settings import CACHE, Profile, versions

INSTALL_LOG = CACHE / "phoenix-install.log"


def _venv() -> Path:
    return CACHE / f"phoenix-{versions()['phoenix']}"


def ensure_backend() -> None:
    """Installs Phoenix (once per version) into its own virtualenv."""
    venv = _venv()
    if (venv / "bin" / "phoenix").exists():
        return
    version = versions()["phoenix"]
    log(f"installing Arize Phoenix {version} for traces (pip, about a minute the first time; log: {INSTALL_LOG})")
    started = time.time()
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(INSTALL_LOG, "ab") as install_log:
        made = subprocess.run([sys.executable, "-m", "venv", str(venv)], stdout=install_log, stderr=subprocess.STDOUT)
        if made.returncode == 0:
            made = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", f"arize-phoenix=={version}"],
                                  stdout=install_log, stderr=subprocess.STDOUT)
    if made.returncode != 0 or not (venv / "bin" / "phoenix").exists():
        raise SystemExit(f"installing Arize Phoenix failed; see {INSTALL_LOG}")
    log(f"Phoenix installed in {time.time() - started:.0f}s")


def backend_argv() -> list[str]:
    return [str(_venv() / "bin" / "phoenix"), "serve"]


def backend_env(profile: Profile) -> dict[str, str]:
    """Phoenix on the profile's address and ports, its data in the profile's data dir, and
    nothing sent anywhere else."""
    return dict(
        os.environ,
        PHOENIX_HOST=profile.address,
        PHOENIX_PORT=str(profile.ports["traces"]),
        PHOENIX_GRPC_PORT=str(profile.ports["traces_grpc"]),
        PHOENIX_WORKING_DIR=str(profile.data_dir / "phoenix"),
        PHOENIX_TELEMETRY_ENABLED="false",
        PHOENIX_ALLOW_EXTERNAL_RESOURCES="false",
    )


def host_env(profile: Profile) -> dict[str, str]:
    """What a host (and through its host data, each provider) needs to export traces."""
    if not profile.traces:
        return {}
    return {
        "WASMCLOUD_TRACES_ENABLED": "true",
        "WASMCLOUD_OBSERVABILITY_PROTOCOL": "http",
        "OTEL_EXPORTER_OTLP_ENDPOINT": profile.traces_url,
    }


def spans(profile: Profile, limit: int = 1000, **filters: str) -> list[dict]:
    """Spans the backend holds, newest first (Phoenix's REST API, project `default`),
    narrowed by `filters` such as `name=` or `trace_id=`: each with `name`,
    `context.trace_id`, `context.span_id` and `parent_id`."""
    query = urllib.parse.urlencode({"limit": limit, **filters})
    with urllib.request.urlopen(f"{profile.traces_url}/v1/projects/default/spans?{query}", timeout=10) as reply:
        return json.load(reply).get("data", [])
