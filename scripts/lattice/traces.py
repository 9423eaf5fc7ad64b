"""Traces: a Jaeger the profile runs when `traces` is on (wash.toml, or `up --traces`),
and the OpenTelemetry settings that make every host and provider export to it.

The hosts get upstream's variables (`WASMCLOUD_TRACES_ENABLED`,
`OTEL_EXPORTER_OTLP_ENDPOINT`, `WASMCLOUD_OBSERVABILITY_PROTOCOL`) and hand them to the
providers they start with the host data. The host's HTTP server starts a span per
request and passes its context on with every call, the providers continue it
(`ticketing_provider_support::trace`), and an event carries it from the write that
announced it to its handlers, so one purchase is one trace.

Jaeger (v2, from the module pinned in tools/jaeger/go.mod, built when first needed) keeps
traces in memory, takes OTLP over HTTP and serves its UI and query API on `jaeger_ui`.
"""
from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

from .procs import log
from .settings import CACHE, ROOT, TOOLS_BIN, Profile

JAEGER = TOOLS_BIN / "jaeger"
MODULE = ROOT / "tools" / "jaeger"
BUILD_LOG = CACHE / "jaeger-build.log"


def _stamp() -> str:
    return (MODULE / "go.mod").read_text() + (MODULE / "go.sum").read_text()


def _built() -> bool:
    stamp_file = TOOLS_BIN / ".jaeger.stamp"
    return JAEGER.exists() and stamp_file.exists() and stamp_file.read_text() == _stamp()


def start_jaeger_build() -> subprocess.Popen | None:
    """Starts building Jaeger (tools/jaeger) in the background unless it is built, so that
    it overlaps with other work (`./ticketing test` builds it beside the Rust build)."""
    if _built():
        return None
    log(f"building Jaeger in the background (tools/jaeger, for traces; log: {BUILD_LOG})")
    TOOLS_BIN.mkdir(parents=True, exist_ok=True)
    with open(BUILD_LOG, "ab") as build_log:
        return subprocess.Popen(["go", "build", "-o", str(JAEGER), "github.com/jaegertracing/jaeger/cmd/jaeger"],
                                cwd=MODULE, env=dict(os.environ, GOFLAGS="-buildvcs=false"),
                                stdout=build_log, stderr=subprocess.STDOUT)


def ensure_jaeger(build: subprocess.Popen | None = None) -> None:
    """Jaeger, built: waits for `build` (from start_jaeger_build) or builds it now."""
    if build is None:
        build = start_jaeger_build()
        if build is None:
            return
    started = time.time()
    if build.wait() != 0:
        raise SystemExit(f"building Jaeger failed; see {BUILD_LOG}")
    (TOOLS_BIN / ".jaeger.stamp").write_text(_stamp())
    log(f"Jaeger built ({time.time() - started:.0f}s waited)")


def jaeger_config(profile: Profile) -> Path:
    """Jaeger's configuration: memory storage, OTLP/HTTP in, UI and query API out, on
    the profile's address and ports."""
    p = profile.ports
    path = profile.state_dir / "jaeger.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"""\
service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
extensions:
  jaeger_storage:
    backends:
      memory_store:
        memory:
          max_traces: 100000
  jaeger_query:
    storage:
      traces: memory_store
    http:
      endpoint: {profile.address}:{p['jaeger_ui']}
    grpc:
      endpoint: {profile.address}:{p['jaeger_grpc']}
receivers:
  otlp:
    protocols:
      http:
        endpoint: {profile.address}:{p['otlp']}
processors:
  batch:
    timeout: 200ms
exporters:
  jaeger_storage_exporter:
    trace_storage: memory_store
""")
    return path


def host_env(profile: Profile) -> dict[str, str]:
    """What a host (and through its host data, each provider) needs to export traces."""
    if not profile.traces:
        return {}
    return {
        "WASMCLOUD_TRACES_ENABLED": "true",
        "WASMCLOUD_OBSERVABILITY_PROTOCOL": "http",
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{profile.address}:{profile.ports['otlp']}",
    }


def query(profile: Profile, path: str, **params) -> dict:
    """Jaeger's query API (`/api/services`, `/api/traces?service=...`)."""
    url = f"{profile.traces_url}{path}"
    if params:
        url += "?" + urllib.parse.urlencode(params)
    with urllib.request.urlopen(url, timeout=10) as reply:
        return json.load(reply)
