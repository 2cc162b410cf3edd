"""The command palette: every action the current screen offers, run through the same action as its key.

The list is read from the screen's live bindings (after ``check_action``), so the palette, the footer and the
help screen always agree: what read-only mode hides, or what cannot run now, is not offered either.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.dom import DOMNode
from textual.screen import Screen

HIDDEN_ACTIONS = {"command_palette"}


@dataclass(frozen=True)
class ActionEntry:
    """One action reachable from ``screen``: its key, what it does, and the node that runs it."""

    key: str
    description: str
    help: str
    action: str
    node: DOMNode
    enabled: bool


def _declared_by_orbit(node: DOMNode, key: str, action: str) -> bool:
    """Whether a console class (not Textual's scrolling, focus or copy defaults) declared this binding."""
    for cls in type(node).__mro__:
        if not cls.__module__.startswith("orbit_tui"):
            continue
        for item in cls.__dict__.get("BINDINGS", ()):
            binding = item if isinstance(item, Binding) else Binding(*item)
            if binding.action == action and key in binding.key.split(","):
                return True
    return False


def screen_actions(screen: Screen[object], *, include_disabled: bool = False) -> list[ActionEntry]:
    """The console's actions on ``screen``, its focused widget and the app: one entry per action, in key order."""
    app = screen.app
    entries: list[ActionEntry] = []
    seen: set[tuple[int, str]] = set()
    for key, active in screen.active_bindings.items():
        binding = active.binding
        if not binding.description or binding.action in HIDDEN_ACTIONS or binding.system:
            continue
        if not _declared_by_orbit(active.node, key, binding.action):
            continue
        if not active.enabled and not include_disabled:
            continue
        marker = (id(active.node), binding.action)
        if marker in seen:
            continue
        seen.add(marker)
        entries.append(
            ActionEntry(
                key=app.get_key_display(binding),
                description=binding.description,
                help=binding.tooltip or binding.description,
                action=binding.action,
                node=active.node,
                enabled=active.enabled,
            )
        )
    return entries


class OrbitCommands(Provider):
    """Offers :func:`screen_actions` of the screen the palette was opened on."""

    def _entries(self) -> list[ActionEntry]:
        return screen_actions(self.screen)

    async def discover(self) -> Hits:
        for entry in self._entries():
            yield DiscoveryHit(
                f"{entry.description}  ({entry.key})",
                partial(self.app.run_action, entry.action, entry.node),
                help=entry.help,
            )

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for entry in self._entries():
            title = f"{entry.description}  ({entry.key})"
            score = matcher.match(title)
            if score > 0:
                yield Hit(
                    score,
                    matcher.highlight(title),
                    partial(self.app.run_action, entry.action, entry.node),
                    help=entry.help,
                )
