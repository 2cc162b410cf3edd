"""Azure resource names of a solution: the Python twin of bash ``azure_names`` and TS ``azureNames()``.

The scheme must stay byte-identical with the platform's other two implementations (SPEC §2.1), so it is
one pure function with no configuration: ``h`` is the first 12 lowercase hex digits of sha256 of the
solution id, names carry ``h`` and never the human id, which lives in tags and share metadata instead.
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass

APP_COMPONENTS = ("orbit", "agent", "mc")

# 3-54 chars so that ``<id>-internal`` (9 more) is a valid 63-char Azure Files share name.
SOLUTION_ID_RULE = (
    "a solution id is 3-54 characters of lowercase letters, digits and single hyphens, "
    "starting and ending with a letter or digit"
)
_SOLUTION_ID = re.compile(r"^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){1,52}[a-z0-9]$")


def is_valid_solution_id(solution_id: str) -> bool:
    """Whether ``solution_id`` follows :data:`SOLUTION_ID_RULE`."""
    return bool(_SOLUTION_ID.fullmatch(solution_id))


@functools.lru_cache(maxsize=1 << 16)
def solution_hash(solution_id: str) -> str:
    """``sha256(solution_id as UTF-8).hexdigest()[:12]`` (remembered: a fleet status asks for each id often)."""
    return hashlib.sha256(solution_id.encode("utf-8")).hexdigest()[:12]


@dataclass(frozen=True)
class AzureNames:
    """Every Azure name derived from one solution id."""

    id: str
    h: str
    apps: dict[str, str]
    shares: dict[str, str]
    storages: dict[str, str]

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "h": self.h,
            "apps": dict(self.apps),
            "shares": dict(self.shares),
            "storages": dict(self.storages),
        }


def azure_names(solution_id: str) -> AzureNames:
    """Derive the names of a solution's apps, shares and environment storages (links).

    Does not validate the id; callers that take operator input check :func:`is_valid_solution_id` first.
    """
    h = solution_hash(solution_id)
    return AzureNames(
        id=solution_id,
        h=h,
        apps={component: f"{component}-{h}" for component in APP_COMPONENTS},
        shares={"customer": f"{solution_id}-customer", "internal": f"{solution_id}-internal"},
        storages={"cust_rw": f"{h}-cust-rw", "cust_ro": f"{h}-cust-ro", "int_rw": f"{h}-int-rw"},
    )
