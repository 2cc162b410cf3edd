"""The solution detail shows an app's Key Vault secret references (where, read by whom), never a value."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from conftest import SIZE
from console_helpers import settle
from support import screen_text
from textual.widgets import Static

from orbit_tui.app import OrbitApp
from orbit_tui.screens.solution import SolutionScreen

MakeApp = Callable[..., OrbitApp]
VAULT = "https://orbit-kv.vault.azure.net/secrets"
READER = ("/subscriptions/0000/resourceGroups/orbit-prod/providers/Microsoft.ManagedIdentity/"
          "userAssignedIdentities/orbit-secrets")


async def test_the_detail_lists_secret_references_and_the_variables_taking_them(fixed_copy: Path,
                                                                               make_app: MakeApp) -> None:
    path = fixed_copy / "solutions" / "acme-corp.yaml"
    path.write_text(path.read_text() + (
        "secrets:\n  agent:\n"
        f"    db-password: {{keyVaultUrl: \"{VAULT}/db-password\"}}\n"
        f"    api-token: {{keyVaultUrl: \"{VAULT}/api-token\", identity: \"{READER}\"}}\n"
    ))
    reference = "env:\n  agent:\n    DB_PASSWORD: {secretRef: db-password}\n"
    path.write_text(path.read_text().replace("env:\n", reference, 1))
    app = make_app(fixed_copy)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, SolutionScreen) and app.screen.view.spec.id == "acme-corp"
        shown = str(app.screen.query_one("#solution-secrets", Static).render())
        assert shown.splitlines() == [
            "agent  DB_PASSWORD ← secret db-password",
            f"agent  secret api-token: {VAULT}/api-token (read by orbit-secrets)",
            f"agent  secret db-password: {VAULT}/db-password (read by the pull identity)",
        ]
        assert "Secrets (Key Vault references)" in screen_text(app)


async def test_no_secrets_section_without_secrets(fixed_root: Path, make_app: MakeApp) -> None:
    app = make_app(fixed_root)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, SolutionScreen)
        assert not app.screen.query("#solution-secrets")
