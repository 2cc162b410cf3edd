"""Desired state, drift and freshness: pure functions, table-driven."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from orbit_ops.catalog.releases import ReleaseRecord
from orbit_ops.config.model import SolutionSpec
from orbit_ops.fleet.drift import LiveSnapshot, ReleaseIndex, freshness, solution_status
from orbit_ops.fleet.provision import plan_solution
from orbit_ops.fleet.resources import App, Mount, PlatformTarget, Share, Storage, _frozen, desired_state, differences

TARGET = PlatformTarget("orbitacr.azurecr.io", "orbitfiles", "/subscriptions/x/identities/orbit-pull")


def spec(**images: str) -> SolutionSpec:
    pins = {"orbit_tag": "1.2.1", "agent_tag": "2.0.0", "mc_tag": "1.1.0"} | images
    return SolutionSpec(
        id="acme-corp",
        display_name="Acme Corp",
        images=pins,
        env={"orbit": {"PUBLIC_BASE_URL": "https://acme.example.com"}, "agent": {}, "mc": {}},
        share_quota_gib=50,
        path=Path("solutions/acme-corp.yaml"),
    )


def record(component: str, version: str) -> ReleaseRecord:
    return ReleaseRecord(component, version, f"{component}/v{version}", "a" * 40, f"r/{component}:{version}",
                         "sha256:" + "b" * 64, "r", "run", "2026-11-01T00:00:00Z", "acr")


RELEASES = ReleaseIndex({
    "orbit": [record("orbit", v) for v in ("1.2.0", "1.2.1")],
    "agent": [record("agent", v) for v in ("1.9.0", "1.10.0", "2.0.0", "2.1.0", "2.2.0-rc.1")],
    "mc": [record("mc", "1.1.0")],
})


def versions(s: SolutionSpec) -> dict[str, str]:
    return {c: str(RELEASES.resolve(c, s.pin(c))) for c in ("orbit", "agent", "mc")}


def test_desired_state_follows_spec_2_2() -> None:
    desired = desired_state(spec(), TARGET, versions(spec()))
    h = desired.h
    assert [s.name for s in desired.shares] == ["acme-corp-customer", "acme-corp-internal"]
    assert all(s.quota_gib == 100 for s in desired.shares)  # 50 raised to the premium minimum
    assert dict(desired.shares[1].metadata) == {"solution_id": "acme-corp", "role": "internal"}
    assert [(s.name, s.share_name, s.access_mode) for s in desired.storages] == [
        (f"{h}-cust-rw", "acme-corp-customer", "ReadWrite"),
        (f"{h}-cust-ro", "acme-corp-customer", "ReadOnly"),
        (f"{h}-int-rw", "acme-corp-internal", "ReadWrite"),
    ]
    agent, orbit, mc = desired.app("agent"), desired.app("orbit"), desired.app("mc")
    assert agent.image == "orbitacr.azurecr.io/agent:2.0.0"
    assert agent.mounts == (Mount(f"{h}-cust-rw", "/repo"), Mount(f"{h}-int-rw", "/internal"))
    assert agent.env["METHODOLOGY_PATH"] == "/repo/trajectory-methodology"
    assert orbit.mounts == (Mount(f"{h}-cust-ro", "/repo"),)
    assert orbit.env["PUBLIC_BASE_URL"] == "https://acme.example.com"
    assert mc.mounts == ()
    for app in (agent, orbit, mc):
        assert dict(app.tags) == {"orbit-solution-id": "acme-corp", "orbit-managed-by": "orbit"}
        assert app.registry_server == "orbitacr.azurecr.io" and app.identity.endswith("orbit-pull")


@pytest.mark.parametrize(
    ("desired", "live", "expected"),
    [
        (App("a", "r/agent:1.10.0"), App("a", "r/agent:1.2.0"), ["image 1.2.0 → 1.10.0"]),
        (App("a", "r/x:1", env=_frozen({"URL": "new"})), App("a", "r/x:1", env=_frozen({"URL": "old"})),
         ["env URL old → new"]),
        (App("a", "r/x:1", env=_frozen({"N": "012"})), App("a", "r/x:1", env=_frozen({"N": "10"})),
         ["env N 10 → 012"]),  # the exact value change, as the issue asks of plans
        (App("a", "r/x:1", env=_frozen({"A": "1"})), App("a", "r/x:1"), ["env A added (1)"]),
        (App("a", "r/x:1", env=_frozen({"E": ""})), App("a", "r/x:1"), ['env E added ("")']),
        # A secret-named variable's value is never shown, whatever it looks like; a secret-shaped one is masked.
        (App("a", "r/x:1", env=_frozen({"DB_PASSWORD": "hunter3-rotated"})),
         App("a", "r/x:1", env=_frozen({"DB_PASSWORD": "hunter2"})), ["env DB_PASSWORD *** → ***"]),
        (App("a", "r/x:1", env=_frozen({"API_TOKEN": "tok-SEKRIT-777"})), App("a", "r/x:1"),
         ["env API_TOKEN added (***)"]),
        (App("a", "r/x:1", env=_frozen({"BLOB": "https://h.example/c?sig=abc"})), App("a", "r/x:1"),
         ["env BLOB added (https://h.example/c?<redacted>)"]),
        (App("a", "r/x:1"), App("a", "r/x:1", env=_frozen({"B": "1"})), ["env B removed"]),
        (Storage("s", "sh", "ReadWrite", "acct"), Storage("s", "sh", "ReadOnly", "acct"),
         ["link mode ReadOnly → ReadWrite"]),
        (Share("sh", 100, _frozen({"role": "customer"})), Share("sh", 50, _frozen({"role": "internal"})),
         ["quota 50 → 100 GiB", "metadata role internal → customer"]),
        (App("a", "r/x:1", mounts=(Mount("m", "/repo"),)), App("a", "r/x:1"), ["mounts [] → [m:/repo]"]),
        (App("a", "r/x:1", tags=_frozen({"t": "1"})), App("a", "r/x:1"), ["tag t added (1)"]),
        (App("a", "r/x:1"), App("a", "r/x:1"), []),
    ],
)
def test_differences_name_each_managed_field(desired: object, live: object, expected: list[str]) -> None:
    assert differences(desired, live) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("pin", "resolved", "latest", "released", "expected"),
    [
        ("2.1.0", "2.1.0", "2.1.0", True, "current"),
        ("2.0.0", "2.0.0", "2.1.0", True, "behind"),
        ("1.9.0", "1.9.0", "1.10.0", True, "behind"),
        ("latest", "2.1.0", "2.1.0", True, "floating"),
        ("2.2.0", "2.2.0", "2.1.0", False, "unreleased"),
        ("2.2.0-rc.1", "2.2.0-rc.1", "2.1.0", True, "current"),  # a canary ahead of the stable line
        ("2.1.0-rc.1", "2.1.0-rc.1", "2.1.0", True, "behind"),
        ("latest", None, None, False, "unreleased"),
    ],
)
def test_freshness(pin: str, resolved: str | None, latest: str | None, released: bool, expected: str) -> None:
    assert freshness(pin, resolved, latest, released) == expected


def live_from(desired: object) -> LiveSnapshot:
    d = desired
    return LiveSnapshot(apps={a.name: a for a in d.apps}, storages={s.name: s for s in d.storages},  # type: ignore[attr-defined]
                        shares={s.name: s for s in d.shares})  # type: ignore[attr-defined]


def test_status_synced_drifted_missing_unknown() -> None:
    s = spec()
    desired = desired_state(s, TARGET, versions(s))
    live = live_from(desired)
    status = solution_status(s, TARGET, RELEASES, live)
    assert (status.sync, status.freshness) == ("synced", "behind")  # agent 2.0.0 < 2.1.0
    assert status.apps["agent"].to_json() == {"pinned": "2.0.0", "resolved": "2.0.0", "live": "2.0.0",
                                              "latest": "2.1.0", "sync": "synced", "freshness": "behind",
                                              # a snapshot read without health (SPEC §3.6 keys, added)
                                              "health": "unknown", "revision": None, "ready_revision": None,
                                              "health_reason": "health not read"}

    drifted_app = replace(desired.app("orbit"), image="orbitacr.azurecr.io/orbit:1.2.0")
    drifted = LiveSnapshot(apps={**live.apps, drifted_app.name: drifted_app}, storages=live.storages,
                           shares=live.shares)
    status = solution_status(s, TARGET, RELEASES, drifted)
    assert status.sync == "drifted" and status.apps["orbit"].live == "1.2.0"
    [orbit_resource] = [r for r in status.resources if r.sync == "drifted"]
    assert orbit_resource.diff == ("image 1.2.0 → 1.2.1",)

    gone = LiveSnapshot(apps={k: v for k, v in live.apps.items() if not k.startswith("mc-")},
                        storages=live.storages, shares=live.shares)
    status = solution_status(s, TARGET, RELEASES, gone)
    assert status.sync == "missing" and status.apps["mc"].live is None and status.apps["mc"].sync == "missing"

    unreadable = LiveSnapshot(apps={}, storages={}, shares={}, error="platform unreachable: 503")
    status = solution_status(s, TARGET, RELEASES, unreadable)
    assert status.sync == "unknown" and status.reason == "platform unreachable: 503"


def test_floating_and_unreleased_pins() -> None:
    s = spec(agent_tag="latest", mc_tag="9.9.9")
    status = solution_status(s, TARGET, RELEASES, LiveSnapshot({}, {}, {}))
    assert status.apps["agent"].resolved == "2.1.0" and status.apps["agent"].freshness == "floating"
    assert status.apps["mc"].freshness == "unreleased"
    assert status.freshness == "unreleased"
    assert status.reason is not None and "mc 9.9.9" in status.reason


def test_plan_creates_in_dependency_order_and_nothing_when_synced() -> None:
    s = spec()
    desired = desired_state(s, TARGET, versions(s))
    first = plan_solution(s, desired, LiveSnapshot({}, {}, {}))
    assert [a.kind for a in first.actions] == ["share"] * 2 + ["storage"] * 3 + ["app"] * 3
    assert first.creates == 8 and first.updates == 0
    assert first.notes and "raised to the premium FileStorage minimum of 100 GiB" in first.notes[0]
    again = plan_solution(s, desired, live_from(desired))
    assert again.writes == 0 and again.summary() == "nothing to do"


def test_a_snapshot_shows_counts_not_contents() -> None:
    # asyncio formats the repr of what asyncio.run returns (its SIGINT handler holds the task): with
    # 80,000 resources that repr alone took most of a second.
    s = spec()
    live = live_from(desired_state(s, TARGET, versions(s)))

    assert repr(live) == "LiveSnapshot(apps=3, storages=3, shares=2, error=None)"
