"""Release records (``containers/<component>.yaml``) and platform manifests (``platform/v<X>.yaml``).

A release record is written once, after a successful build, and never edited: the file is an
append-only YAML list, newest last. Appending re-writes the whole file atomically (temp, fsync,
rename) under a cross-process lock, keeping the existing text byte for byte so comments survive.
The formats are documented in ``releases/README.md``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from orbit_ops.errors import ConfigError, NotFoundError
from orbit_ops.fsutil import atomic_write_text
from orbit_ops.versions import VERSION_RULE, is_version, parse_version, precedence_key, version_key
from orbit_ops.yamlfile import YamlDoc, load_yaml

_RELEASE = ((2, 0),)  # the pre-release part of a release's precedence key
RECORD_KEYS = ("component", "version", "tag", "commit", "image", "digest", "registry", "run_id", "built_at", "builder")
BUILDERS = ("acr", "local")
_COMMIT = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_MANIFEST_NAME = re.compile(r"^v([0-9A-Za-z][0-9A-Za-z.+-]*)\.ya?ml$")
RECORD_HEADER = (
    "# Release records of one component: append-only, newest last (see releases/README.md).\n"
    "# Written by 'orbit build' after a successful build; never edit an entry by hand.\n"
)


@dataclass(frozen=True)
class ReleaseRecord:
    """What was built from which tag: image, commit and tag cannot drift apart."""

    component: str
    version: str
    tag: str
    commit: str
    image: str
    digest: str
    registry: str
    run_id: str
    built_at: str
    builder: str

    def to_json(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True)
class PlatformManifest:
    """A platform version: which version of each component belongs to it."""

    version: str
    components: dict[str, str]
    path: Path


def records_path(releases_dir: Path, component: str) -> Path:
    return releases_dir / "containers" / f"{component}.yaml"


def load_records(releases_dir: Path, component: str) -> list[ReleaseRecord]:
    """The release records of ``component``, in file order (oldest first); [] if there are none.

    Raises:
        ConfigError: the file is malformed (names the line and rule).
    """
    path = records_path(releases_dir, component)
    if not path.exists():
        return []
    return _parse_records(load_yaml(path), component)


def load_all_records(releases_dir: Path, components: Iterable[str]) -> dict[str, list[ReleaseRecord]]:
    return {component: load_records(releases_dir, component) for component in components}


def latest_record(records: list[ReleaseRecord], version: str) -> ReleaseRecord | None:
    """The newest record of ``version`` (a forced rebuild appends a second one)."""
    return next((record for record in reversed(records) if record.version == version), None)


def newest_release(records: list[ReleaseRecord], *, include_prerelease: bool = False) -> ReleaseRecord | None:
    """The record of the highest released version (pre-releases only if asked)."""
    best: ReleaseRecord | None = None
    best_key = None
    for record in records:
        key = version_key(record.version)
        if key is None or (key[3] != _RELEASE and not include_prerelease):
            continue
        if best_key is None or key >= best_key:
            best, best_key = record, key
    return best


def append_record(releases_dir: Path, record: ReleaseRecord) -> Path:
    """Append ``record`` to its component's file atomically; the existing text is kept as is.

    The caller holds the component's build lock, so no other writer races this read-modify-write.

    Raises:
        ConfigError: the existing file is malformed (it is left untouched).
    """
    path = records_path(releases_dir, record.component)
    existing = path.read_text(encoding="utf-8") if path.exists() else ""
    current = _parse_records(load_yaml(path, text=existing), record.component) if existing.strip() else []
    item = yaml.safe_dump([record.to_json()], sort_keys=False, default_flow_style=False, allow_unicode=True)
    if not current:
        # An empty file, or one holding only comments or "[]": start the list afresh.
        text = RECORD_HEADER + item
    else:
        text = existing if existing.endswith("\n") else existing + "\n"
        text += item
    written = _parse_records(load_yaml(path, text=text), record.component)
    if len(written) != len(current) + 1 or written[-1] != record:
        raise ConfigError(path, "appending would not yield one more record; the file was left untouched",
                          rule="a block list of records")
    atomic_write_text(path, text)
    return path


def _parse_records(doc: YamlDoc, component: str) -> list[ReleaseRecord]:
    if doc.data is None:
        return []
    if not isinstance(doc.data, list):
        raise doc.error("expected a list of release records", rule="containers/<component>.yaml is a YAML list")
    records = []
    for index, item in enumerate(doc.data):
        if not isinstance(item, dict):
            raise doc.error("a release record is a mapping", index, rule="record keys: " + ", ".join(RECORD_KEYS))
        unknown = [key for key in item if key not in RECORD_KEYS]
        missing = [key for key in RECORD_KEYS if key not in item]
        if unknown:
            raise doc.error(f"unknown key '{unknown[0]}' in a release record", index, unknown[0],
                            rule="record keys: " + ", ".join(RECORD_KEYS))
        if missing:
            raise doc.error(f"release record lacks {', '.join(missing)}", index,
                            rule="record keys: " + ", ".join(RECORD_KEYS))
        values = {key: _text(item[key]) for key in RECORD_KEYS}
        _check_record(doc, index, values, component)
        records.append(ReleaseRecord(**values))
    return records


def _text(value: Any) -> str:
    # An unquoted timestamp loads as a datetime; keep ISO 8601 rather than str()'s space form.
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return str(value)


def _check_record(doc: YamlDoc, index: int, values: Mapping[str, str], component: str) -> None:
    if values["component"] != component:
        raise doc.error(f"record of component '{values['component']}' in {component}.yaml", index, "component",
                        rule="containers/<component>.yaml holds that component's records only")
    if not is_version(values["version"]):
        raise doc.error(f"version '{values['version']}' is not SemVer", index, "version", rule=VERSION_RULE)
    if values["tag"] != f"{component}/v{values['version']}":
        raise doc.error(f"tag '{values['tag']}' does not match {component}/v{values['version']}", index, "tag",
                        rule="tag is <component>/v<version>")
    if not _COMMIT.fullmatch(values["commit"]):
        raise doc.error(f"commit '{values['commit']}' is not a full hex object id", index, "commit",
                        rule="commit is the tag's peeled commit, 40 hex digits")
    if not _DIGEST.fullmatch(values["digest"]):
        raise doc.error(f"digest '{values['digest']}' is not sha256:<64 hex>", index, "digest",
                        rule="digest is the image manifest's sha256")
    if values["builder"] not in BUILDERS:
        raise doc.error(f"builder '{values['builder']}' is unknown", index, "builder",
                        rule=f"builder is one of {', '.join(BUILDERS)}")


# --- platform manifests -------------------------------------------------------------------------

def manifest_path(releases_dir: Path, platform_version: str) -> Path:
    return releases_dir / "platform" / f"v{platform_version}.yaml"


def list_manifests(releases_dir: Path) -> list[str]:
    """The platform versions that have a manifest, newest first where they are SemVer."""
    folder = releases_dir / "platform"
    if not folder.is_dir():
        return []
    names = [m.group(1) for path in folder.iterdir() if (m := _MANIFEST_NAME.fullmatch(path.name))]
    return sorted(names, key=lambda v: (0, precedence_key(p)) if (p := parse_version(v)) else (1, v), reverse=True)


def load_manifest(releases_dir: Path, platform_version: str, components: Iterable[str]) -> PlatformManifest:
    """Load ``platform/v<platform_version>.yaml`` and check it names known components and versions.

    Raises:
        NotFoundError: there is no such manifest (the message lists those that exist).
        ConfigError: the manifest breaks a rule.
    """
    version = platform_version.removeprefix("v")
    path = manifest_path(releases_dir, version)
    if not path.exists():
        known = list_manifests(releases_dir)
        listing = ", ".join(known) if known else "none"
        raise NotFoundError(f"no platform manifest {path} (platform versions: {listing})")
    doc = load_yaml(path)
    data = doc.data
    if not isinstance(data, dict):
        raise doc.error("expected a mapping with 'components'", rule="platform/v<X>.yaml: {platform, components}")
    for key in data:
        if key not in ("platform", "components", "notes"):
            raise doc.error(f"unknown key '{key}'", key, rule="platform manifest keys: platform, components, notes")
    if "platform" in data and str(data["platform"]) != version:
        raise doc.error(f"platform '{data['platform']}' differs from the file name v{version}", "platform",
                        rule="platform equals the X of v<X>.yaml")
    listed = data.get("components")
    if not isinstance(listed, dict) or not listed:
        raise doc.error("'components' must map component names to versions", "components",
                        rule="platform/v<X>.yaml lists component: version")
    known_components = set(components)
    versions: dict[str, str] = {}
    for name, value in listed.items():
        if name not in known_components:
            raise doc.error(f"unknown component '{name}'", "components", name,
                            rule="components are those of orbit.yaml: " + ", ".join(sorted(known_components)))
        text = value if isinstance(value, str) else None
        if text is None or not is_version(text):
            raise doc.error(f"{name}: {value!r} is not a version", "components", name,
                            rule=f"manifests pin exact versions; {VERSION_RULE}")
        versions[str(name)] = text
    return PlatformManifest(version=version, components=versions, path=path)


def write_manifest(releases_dir: Path, platform_version: str, components: Mapping[str, str], notes: str = "") -> Path:
    """Write ``platform/v<platform_version>.yaml`` atomically."""
    path = manifest_path(releases_dir, platform_version)
    body: dict[str, Any] = {"platform": platform_version, "components": dict(components)}
    if notes:
        body["notes"] = notes
    text = "# Platform manifest: the component versions that make up this platform version.\n"
    text += yaml.safe_dump(body, sort_keys=False, default_flow_style=False)
    atomic_write_text(path, text)
    return path
