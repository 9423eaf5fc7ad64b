"""The lattice tool's own rules, without a lattice: reading the manifest's images, telling
stale images apart, and the supervisor's backoff."""
from __future__ import annotations

from lattice import images
from lattice.settings import ROOT, profile
from lattice.supervise import FIRST_DELAY, LONGEST_DELAY, STABLE_AFTER, Backoff


def test_every_manifest_entry_is_read_with_its_wadm_id_and_image():
    wanted = images.wanted(profile("dev"), ROOT / "wadm.yaml")
    assert wanted["ticketing-auth"] == "file://./build/auth.wasm"
    assert wanted["ticketing-http_gateway"] == "file://./build/http-gateway.par.gz"
    assert wanted["ticketing-http_client"] == "wasmcloud+builtin://http-client"
    assert len(wanted) == 12, sorted(wanted)


def test_a_ref_reported_without_its_scheme_is_the_same_image():
    assert images.same_image("/x/auth-1.wasm", "file:///x/auth-1.wasm")
    assert images.same_image("http-client", "wasmcloud+builtin://http-client")
    assert not images.same_image("file:///x/auth-1.wasm", "file:///x/auth-2.wasm")


def test_backoff_doubles_while_a_process_keeps_dying_and_resets_once_it_held():
    b = Backoff()
    assert b.may_restart("nats", 0)
    assert b.restarted("nats", 0) == FIRST_DELAY
    assert not b.may_restart("nats", 0.5)
    assert b.restarted("nats", 1) == FIRST_DELAY * 2
    assert b.restarted("nats", 3) == FIRST_DELAY * 4
    for t in range(4, 20):
        b.restarted("nats", t)
    assert b.delay["nats"] == LONGEST_DELAY
    later = 20 + STABLE_AFTER + 1
    assert b.restarted("nats", later) == FIRST_DELAY
    assert b.may_restart("redis", later), "each process backs off on its own"


def test_the_manifest_is_valid_for_wadm():
    from lattice.washcli import wash

    checked = wash(profile("dev"), "app", "validate", str(ROOT / "wadm.yaml"), check=False)
    assert checked.returncode == 0 and "manifest is valid" in checked.stdout, checked.stdout + checked.stderr


def test_inline_configs_are_read_with_their_properties():
    from lattice.configs import inline_configs

    found = inline_configs(ROOT / "wadm.yaml")
    assert found["auth-limits"]["signin_failures_per_account"] == "5"
    assert found["orders-settings"] == {"expiration_window_seconds": "900"}
    assert found["route-auth"] == {"path": "/api/users"}
    assert "ticketing-session" not in found, "configs put outside the manifest are not its to restore"
