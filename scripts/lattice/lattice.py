"""Bringing a profile's lattice up and down.

Order: NATS (JetStream) → storage servers (FerretDB, Redis, stripe-mock) → wasmCloud
host(s) → wadm → `wash app deploy` → wait until wadm says Deployed and HTTP answers.
"""
from __future__ import annotations

import hashlib
import os
import re
import secrets
import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path

from . import configs, images, procs
from .processes import SUPERVISOR, host_names, process_names, start_hosts, start_servers, start_supervisor, start_wadm
from .nats import Nats
from .procs import log
from .washcli import wash, wash_json
from .settings import ROOT, TOOLS_BIN, Profile, dev_ports


def wait_for_hosts(profile: Profile, timeout: float = 90) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        out = wash_json(profile, "get", "hosts")
        if out and len(out.get("hosts", [])) >= profile.hosts:
            return
        for name in host_names(profile):
            if not procs.running(profile, name):
                raise SystemExit(f"{name} exited; last lines of its log:\n{procs.log_tail(profile, name)}")
        time.sleep(0.5)
    raise SystemExit(f"the hosts did not join lattice {profile.lattice!r} within {timeout:.0f}s")


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


def app_status(profile: Profile) -> str | None:
    out = wash_json(profile, "app", "status", profile.app)
    try:
        return out["status"]["status"]["type"]
    except (TypeError, KeyError):
        return None


SESSION_CONFIG = "ticketing-session"


def ensure_session_config(profile: Profile) -> None:
    """Puts the shared `jwt_key` into the lattice's named config `ticketing-session`.

    The key is `TICKETING_JWT_KEY` when set, else a random one kept (mode 600) in the
    profile's state dir, so sessions survive a restart of the local lattice.
    """
    key_file = profile.state_dir / "jwt_key"
    key = os.environ.get("TICKETING_JWT_KEY")
    if not key:
        if not key_file.exists():
            key_file.parent.mkdir(parents=True, exist_ok=True)
            key_file.touch(mode=0o600)
            key_file.write_text(secrets.token_urlsafe(48))
        key = key_file.read_text().strip()
    wash(profile, "config", "put", SESSION_CONFIG, f"jwt_key={key}")


STRIPE_CONFIG = "ticketing-stripe"


def ensure_stripe_config(profile: Profile) -> None:
    """Puts the payments-stripe provider's key and API base into named config
    `ticketing-stripe`: Stripe's test mode when `TICKETING_STRIPE_SECRET_KEY` (an sk_test_
    key) is set, else the local stripe-mock with a placeholder key it accepts.
    `TICKETING_STRIPE_API_BASE` overrides the base (the end-to-end tests put a
    decline-simulating front before stripe-mock)."""
    key = os.environ.get("TICKETING_STRIPE_SECRET_KEY")
    base = "https://api.stripe.com" if key else f"http://127.0.0.1:{profile.ports['stripe_mock']}"
    base = os.environ.get("TICKETING_STRIPE_API_BASE", base)
    wash(profile, "config", "put", STRIPE_CONFIG, f"stripe_secret_key={key or 'sk_test_ticketingLocalStripeMock'}",
         f"api_base={base}")


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


def deploy_in_two_steps(profile: Profile) -> Path:
    """A first deployment starts everything without links, then the links are put.

    A link put while a provider process is starting can miss it (the host hands the
    provider the links it has at start; the provider subscribes to new ones a moment
    later), and wadm never puts a stored link again. With the providers running first,
    no link arrives in that moment."""
    manifest = deploy(profile, links=False)
    wait_until_deployed(profile)
    time.sleep(2)
    log("deploying the links")
    wash(profile, "app", "deploy", str(manifest))
    return manifest


def put_configs(profile: Profile) -> None:
    """The named configs that live outside the manifest (a host must be running)."""
    ensure_session_config(profile)
    ensure_stripe_config(profile)


def deploy(profile: Profile, links: bool = True) -> Path:
    """Deploys the manifest (without its link traits when `links` is false); returns the
    full rendered manifest."""
    manifest = manifest_for(profile)
    if not links:
        first = profile.state_dir / "wadm-without-links.yaml"
        first.write_text(without_links(manifest.read_text()))
        log("deploying without links first, so every provider is listening before its links come")
        wash(profile, "app", "deploy", str(first))
        return manifest
    log(f"deploying {manifest.relative_to(ROOT)} with wash app deploy")
    wash(profile, "app", "deploy", str(manifest))
    return manifest


def wait_until_deployed(profile: Profile, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        status = app_status(profile)
        if status != last:
            log(f"application {profile.app}: {status or 'unknown'}")
            last = status
        if status == "deployed":
            return
        time.sleep(1)
    detail = wash(profile, "app", "status", profile.app, check=False).stdout
    raise SystemExit(f"{profile.app} not deployed after {timeout:.0f}s:\n{detail}\nlogs: {profile.log_dir}")


def http_get(url: str, timeout: float = 10) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as res:
            return res.status, res.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def wait_for_http(profile: Profile, timeout: float = 120) -> None:
    """Waits until the API's health path answers 200."""
    url = profile.http_url + profile.health_path
    deadline = time.time() + timeout
    while True:
        try:
            status, _ = http_get(url)
            if status == 200:
                return
        except OSError:
            pass
        if time.time() > deadline:
            raise SystemExit(f"{url} did not answer 200 within {timeout:.0f}s; logs: {profile.log_dir}")
        time.sleep(0.5)


# What each route answers once its link reached the gateway (an unrouted /api path would
# fall through to the web component's JSON 404).
GATEWAY_ID = "ticketing-http_gateway"
MESSAGING_ID = "ticketing-messaging_jetstream"
ROUTE_CHECKS = [("/", 200), ("/api/users/currentuser", 200), ("/api/tickets", 200), ("/api/orders", 401),
                ("/api/payments/orders/000000000000000000000000", 401)]


def _routes_ok(profile: Profile) -> list[str]:
    wrong = []
    for path, expected in ROUTE_CHECKS:
        try:
            status, _ = http_get(profile.http_url + path)
        except OSError:
            status = 0
        if status != expected:
            wrong.append(f"{path} answered {status}, not {expected}")
    return wrong


def _consumers_missing(profile: Profile) -> list[str]:
    """Durable consumers the messaging provider should have made for its links, and has not."""
    links = (wash_json(profile, "get", "links") or {}).get("links", [])
    clean = lambda text: re.sub(r"[^A-Za-z0-9-]", "_", text)  # noqa: E731 (as the provider names them)
    missing = []
    bus = Nats(profile.ports["nats"])
    try:
        for link in links:
            if link.get("source_id") != MESSAGING_ID:
                continue
            for config in link.get("source_config", []):
                subjects = (wash_json(profile, "config", "get", config) or {}).get("subscriptions", "")
                for subject in filter(None, (s.strip() for s in subjects.split(","))):
                    name = f"{clean(link['target'])}__{clean(subject)}"
                    if "error" in bus.jetstream(f"CONSUMER.INFO.TICKETING_EVENTS.{name}"):
                        missing.append(name)
    finally:
        bus.close()
    return missing


def resend_links(profile: Profile, provider_id: str) -> None:
    """Deletes and puts again every link from `provider_id` (the same link put again is
    not sent on; deleted and put, it is)."""
    for link in (wash_json(profile, "get", "links") or {}).get("links", []):
        if link.get("source_id") != provider_id:
            continue
        args = ["link", "put", provider_id, link["target"], link["wit_namespace"], link["wit_package"],
                "--link-name", link["name"]]
        args += [a for i in link.get("interfaces", []) for a in ("--interface", i)]
        args += [a for c in link.get("source_config", []) for a in ("--source-config", c)]
        args += [a for c in link.get("target_config", []) for a in ("--target-config", c)]
        wash(profile, "link", "del", provider_id, link["wit_namespace"], link["wit_package"],
             "--link-name", link["name"], check=False)
        wash(profile, *args, check=False)


def ensure_links(profile: Profile, timeout: float = 20) -> None:
    """Checks that the gateway has every route and the messaging provider every consumer;
    re-sends a provider's links if not.

    A link put while a provider process is starting (after the host captured the links it
    hands the provider, before the provider subscribed to link updates) never reaches it:
    a race in wasmCloud 1.x's provider start. wadm sees the link stored and does not put
    it again, so it stays missing."""
    for what, provider_id, check in (("route", GATEWAY_ID, _routes_ok), ("event consumer", MESSAGING_ID, _consumers_missing)):
        deadline = time.time() + timeout
        while (wrong := check(profile)) and time.time() < deadline:
            time.sleep(0.5)
        if not wrong:
            continue
        log(f"{provider_id} missed a link ({what}: {'; '.join(wrong)}): sending its links again")
        resend_links(profile, provider_id)
        deadline = time.time() + 30
        while (wrong := check(profile)) and time.time() < deadline:
            time.sleep(0.5)
        if wrong:
            raise SystemExit(f"{what} still missing after sending {provider_id}'s links again: "
                             f"{'; '.join(wrong)}; logs: {profile.log_dir}")


def wait_for_wadm(profile: Profile, timeout: float = 60) -> None:
    """Waits until wadm answers (`wash app list`), so that what it holds can be read."""
    deadline = time.time() + timeout
    while wash_json(profile, "app", "list") is None:
        if not procs.running(profile, "wadm"):
            raise SystemExit(f"wadm exited; last lines of its log:\n{procs.log_tail(profile, 'wadm')}")
        if time.time() > deadline:
            raise SystemExit(f"wadm did not answer within {timeout:.0f}s; log: {profile.log_dir / 'wadm.log'}")
        time.sleep(0.5)


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
    start_servers(profile)
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
    # The supervisor first, so that it does not start again what `down` stops.
    stopped = [name for name in [SUPERVISOR, *reversed(process_names(profile))] if procs.stop(profile, name)]
    log(f"stopped {', '.join(stopped)}" if stopped else f"nothing was running for the {profile.name} profile")


def status(profile: Profile) -> int:
    print(f"{profile.name} profile, lattice {profile.lattice!r}, state in {profile.state_dir}")
    any_running = False
    for name in [*process_names(profile), SUPERVISOR]:
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
