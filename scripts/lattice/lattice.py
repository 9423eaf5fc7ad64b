"""Bringing a profile's lattice up and down, and what runs: the `up`, `down` and
`status` commands, in terms of the modules that do each job.

Order: NATS (JetStream) → storage servers (FerretDB, Redis, stripe-mock), OCI registry,
secrets backend → secrets stored and mapped → wadm →
wasmCloud host(s) → `wash app deploy` → wait until wadm says Deployed and HTTP answers.
Starting the processes is `processes.py`, rendering the manifest `manifest.py`, deploying
it `deploy.py`, the waits and link checks `health.py`.
"""
from __future__ import annotations

import time

from . import configs, images, machines, procs, secret_store
from .deploy import app_status, deploy, deploy_in_two_steps, put_configs, wait_until_deployed
from .health import ensure_links, wait_for_hosts, wait_for_http, wait_for_wadm
from .processes import SUPERVISOR, process_names, start_hosts, start_servers, start_supervisor, start_wadm, running_names, unlisted_names
from .procs import log
from .settings import ROOT, TOOLS_BIN, Profile


def up(profile: Profile) -> None:
    """Brings the profile's lattice to exactly what the manifest says.

    wadm keeps the last deployed manifest in NATS across `down`. Were hosts to start
    first, wadm would start that version's images on them and could then never move
    them to the new ones (a host refuses to replace a running component with
    `allow_update=false`). So wadm starts before any host and, if it holds a deployment,
    gets the new manifest before there is anything to reconcile; a fresh lattice is
    deployed in two steps once the hosts run. Either way `up` ends by checking every
    host's images against the manifest and replacing any stale one."""
    started = time.time()
    log(f"starting lattice {profile.lattice!r} ({profile.name} profile); state and logs in {profile.state_dir}")
    profile.state_dir.mkdir(parents=True, exist_ok=True)
    profile.store_file.write_text(profile.store + "\n")  # `down`, `status` and the next `up` read it
    machines.create(profile)
    start_servers(profile)
    # Before any host starts a component or provider that needs one.
    secret_store.ensure_secrets(profile, profile.manifest.read_text())
    start_wadm(profile)
    wait_for_wadm(profile)
    known = app_status(profile) not in (None, "undeployed")
    if known:
        manifest = deploy(profile)  # changed pieces are replaced, links stay
    start_hosts(profile)
    wait_for_hosts(profile)
    put_configs(profile)
    if not known:
        manifest = deploy_in_two_steps(profile)
    wait_until_deployed(profile)
    images.replace_stale(profile, manifest)
    configs.ensure_inline_configs(profile, manifest)
    wait_for_http(profile)
    ensure_links(profile)
    start_supervisor(profile)
    log(f"lattice up in {time.time() - started:.0f}s")


def down(profile: Profile) -> None:
    # The supervisor first, so that it does not start again what `down` stops; servers
    # after their clients (PostgreSQL waits for FerretDB's connections to end).
    order = [SUPERVISOR, *reversed(process_names(profile)), *unlisted_names(profile)]
    stopped = [name for name in order if procs.stop(profile, name)]
    machines.remove(profile)
    log(f"stopped {', '.join(stopped)}" if stopped else f"nothing was running for the {profile.name} profile")


def status(profile: Profile) -> int:
    print(f"{profile.name} profile, lattice {profile.lattice!r}, {profile.store_label}, state in {profile.state_dir}")
    any_running = False
    for name in [*running_names(profile), SUPERVISOR]:
        pid = procs.running(profile, name)
        any_running |= bool(pid)
        print(f"  {name:<12} {'running, pid ' + str(pid) if pid else 'stopped'}")
    if procs.running(profile, "nats") and (TOOLS_BIN / "wash").exists():
        print(f"  application {profile.app}: {app_status(profile) or 'not deployed'}")
        rendered = profile.state_dir / "wadm.yaml"
        if rendered.exists():
            print(f"  images (wanted; per host: ok or STALE), from {rendered.relative_to(ROOT)}:")
            print("\n".join(images.report(profile, rendered)))
        print(f"  serving {profile.http_url}")
    return 0 if any_running else 3
