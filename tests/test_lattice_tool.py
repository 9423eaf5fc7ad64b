"""The lattice tool's own rules, without a lattice: reading the manifest's images, telling
stale images apart, the supervisor's backoff, and the event names shared with Rust."""
from __future__ import annotations

import re

import pytest

from lattice import events, images
from lattice.settings import ROOT, load_settings, profile
from lattice.supervise import FIRST_DELAY, LONGEST_DELAY, STABLE_AFTER, Backoff


def test_every_manifest_entry_is_read_with_its_wadm_id_and_image():
    wanted = images.wanted(profile("dev"), ROOT / "wadm.yaml")
    assert wanted["ticketing-auth"] == "file://./build/auth.wasm"
    assert wanted["ticketing-keyvalue_mongo"] == "file://./build/keyvalue-mongo.par.gz"
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


def test_the_manifest_names_no_address_so_it_deploys_to_any_lattice():
    """Endpoints live in named configs (`ticketing-mongo`, `ticketing-redis`, ...) that `up`
    or the deployer puts, so one wadm.yaml serves the dev, test and any other lattice."""
    values = [line.split("#", 1)[0] for line in (ROOT / "wadm.yaml").read_text().splitlines()]
    addresses = [v.strip() for v in values if re.search(r"\w+://(?!\./build/)|\d+\.\d+\.\d+\.\d+:\d+", v)
                 and "wasmcloud+builtin://" not in v]
    assert addresses == [], addresses


def test_each_lattice_gets_its_own_endpoints():
    from lattice.deploy import endpoint_configs

    dev, test = endpoint_configs(profile("dev")), endpoint_configs(profile("test"))
    assert dev.keys() == test.keys()
    assert test["ticketing-redis"]["redis_url"] == f"redis://127.0.0.1:{profile('test').ports['redis']}"
    assert test["ticketing-http"]["default_address"] == f"127.0.0.1:{profile('test').ports['http']}"
    assert dev["ticketing-mongo"] != test["ticketing-mongo"]
    found = (ROOT / "wadm.yaml").read_text()
    assert all(f"- name: {name}\n" in found for name in dev), "every endpoint config is used by the manifest"


def test_a_rendered_manifest_carries_one_version():
    from lattice.manifest import version_of, with_version

    manifest = (ROOT / "wadm.yaml").read_text()
    versioned = with_version(manifest, "abc-1")
    assert version_of(versioned) == "abc-1"
    assert version_of(with_version(versioned, "abc-2")) == "abc-2"
    assert with_version(versioned, "abc-2").count("version:") == versioned.count("version:")


def test_up_can_change_an_inline_config_property_and_nothing_else():
    import pytest
    from lattice.configs import inline_configs, named_entries
    from lattice.manifest import with_config

    manifest = (ROOT / "wadm.yaml").read_text()
    changed = with_config(manifest, "auth-limits", "signups_per_address", "100000")
    before, after = named_entries(manifest), named_entries(changed)
    assert [e for e in after if e[2] == "auth-limits"][0][3]["signups_per_address"] == "100000"
    assert [e for e in before if e[2] != "auth-limits"] == [e for e in after if e[2] != "auth-limits"]
    assert len(changed.splitlines()) == len(manifest.splitlines())
    for name, key in [("auth-limits", "no_such_limit"), ("no-such-config", "signups_per_address")]:
        with pytest.raises(SystemExit, match=name if name != "auth-limits" else key):
            with_config(manifest, name, key, "1")
    assert inline_configs(ROOT / "wadm.yaml")["auth-limits"]["signups_per_address"] == "500", "wadm.yaml untouched"


def test_inline_configs_are_read_with_their_properties():
    from lattice.configs import inline_configs

    found = inline_configs(ROOT / "wadm.yaml")
    assert found["auth-limits"]["signin_failures_per_account"] == "5"
    assert found["orders-settings"] == {"expiration_window_seconds": "900"}
    assert found["route-auth"] == {"path": "/api/users"}
    assert "ticketing-mongo" not in found, "configs put outside the manifest are not its to restore"
    assert "jwt_key" not in found, "a secret reference is no config"


def test_secret_references_are_read_with_who_gets_them_in_either_yaml_layout():
    import yaml

    from lattice.configs import named_entries
    from lattice.secret_store import readers

    text = (ROOT / "wadm.yaml").read_text()
    assert readers(text) == {"auth": ["jwt_key"], "tickets": ["jwt_key"], "orders": ["jwt_key"],
                             "payments": ["jwt_key"], "web": ["jwt_key"], "payments-stripe": ["stripe_secret_key"]}
    # The tests deploy manifests a YAML dumper wrote, with lists not indented under their key.
    assert named_entries(yaml.safe_dump(yaml.safe_load(text), sort_keys=False)) == named_entries(text)


def test_consumer_names_follow_the_examples_shared_with_rust():
    examples = events.SHARED["consumer_names"]
    assert examples
    for e in examples:
        assert events.consumer_name(e["subscriber"], e["subject"]) == e["consumer"], e


def test_the_manifest_subscribes_to_exactly_the_shared_subjects():
    from lattice.configs import inline_configs

    subscribed = {s.strip() for config in inline_configs(ROOT / "wadm.yaml").values()
                  for s in config.get("subscriptions", "").split(",") if s.strip()}
    assert subscribed == set(events.SUBJECTS), "api/events.json and wadm.yaml's subscriptions differ"


def test_the_readme_events_table_lists_exactly_the_shared_subjects():
    readme = (ROOT / "README.md").read_text()
    table = readme.split("| subject | announced by | consumed by |", 1)[1].split("\n\n", 1)[0]
    listed = [s for row in table.splitlines()[2:] for s in re.findall(r"`([^`]+)`", row.split("|")[1])]
    assert listed == list(events.SUBJECTS), "api/events.json and the README's events table differ"


def test_no_two_profiles_share_a_port():
    """Profiles run side by side (the tests start several beside a running `up`)."""
    names = load_settings()["profiles"]
    taken: dict[int, str] = {}
    for name in names:
        prof = profile(name)
        ports = {**prof.ports, "stripe_mock_https": prof.ports["stripe_mock"] + 1}
        for what, port in ports.items():
            assert port not in taken, f"{name}'s {what} port {port} is also {taken[port]}"
            taken[port] = f"{name}'s {what}"


def test_the_store_asked_for_wins_and_an_unknown_one_is_refused(monkeypatch):
    assert profile("postgres").store == "postgres"  # wash.toml's [profiles.postgres]
    monkeypatch.setenv("TICKETING_STORE", "postgres")
    assert profile("test").store == "postgres"
    monkeypatch.setenv("TICKETING_STORE", "mysql")
    with pytest.raises(SystemExit, match="unknown store 'mysql'"):
        profile("test")
