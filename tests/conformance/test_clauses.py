"""The clause index (features/clauses.toml) and the features agree.

Every scenario in features/*.feature names the documented clause it checks with
one tag ``@spec:<area>.<clause>``; features/clauses.toml maps each clause id to
the documentation sentence and its source URL. These tests keep the two in
step:

- every scenario has exactly one ``@spec:`` tag, and no two scenarios share one;
- every clause id is well formed, and its area is the feature's ``@area:`` tag
  or one of the prefixes that feature is allowed (``ALLOWED_AREAS``);
- every tag has an entry with non-empty ``text`` and an http(s) ``source``;
- every entry is used by a scenario (no orphans), and the entries follow the
  order of the scenarios (feature files alphabetically, as pytest-bdd collects
  them; scenarios in file order).

The feature files are read with a small line parser (tags, ``Feature:``,
``Scenario:``/``Scenario Outline:``, doc strings skipped), so this module needs
neither pytest-bdd nor a target.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import pytest

ROOT = Path(__file__).resolve().parents[2]
FEATURES = ROOT / "features"
CLAUSES = FEATURES / "clauses.toml"

# A feature's clauses normally share its @area: tag. A feature that covers more
# than one documented area lists the clause prefixes it may use instead.
ALLOWED_AREAS: dict[str, frozenset[str]] = {
    "storage-network": frozenset({"storage", "network"}),
}

CLAUSE_ID = re.compile(r"^[a-z][a-z0-9-]*\.[a-z0-9][a-z0-9-]*$")
ENTRY_KEYS = {"text", "source", "paraphrase"}


@dataclass
class Scenario:
    feature: str
    line: int
    name: str
    tags: list[str]

    @property
    def specs(self) -> list[str]:
        return [t[len("@spec:"):] for t in self.tags if t.startswith("@spec:")]

    def where(self) -> str:
        return f"{self.feature}:{self.line} ({self.name})"


@dataclass
class Feature:
    path: Path
    tags: list[str] = field(default_factory=list)
    scenarios: list[Scenario] = field(default_factory=list)

    @property
    def area(self) -> str | None:
        areas = [t[len("@area:"):] for t in self.tags if t.startswith("@area:")]
        return areas[0] if len(areas) == 1 else None

    def allowed_areas(self) -> frozenset[str]:
        if self.area is None:
            return frozenset()
        return ALLOWED_AREAS.get(self.area, frozenset({self.area}))


def parse_feature(path: Path) -> Feature:
    feature = Feature(path)
    pending: list[str] = []
    in_docstring = False
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if line.startswith('"""') or line.startswith("```"):
            in_docstring = not in_docstring
            continue
        if in_docstring or not line or line.startswith("#"):
            continue
        if line.startswith("@"):
            pending.extend(line.split())
            continue
        keyword, _, rest = line.partition(":")
        if keyword == "Feature":
            feature.tags = pending
        elif keyword in ("Scenario", "Scenario Outline", "Scenario Template", "Example"):
            feature.scenarios.append(Scenario(path.name, number, rest.strip(), pending))
        pending = []
    return feature


def load_features() -> list[Feature]:
    return [parse_feature(p) for p in sorted(FEATURES.glob("*.feature"))]


def load_clauses() -> dict[str, dict]:
    with CLAUSES.open("rb") as fh:
        return tomllib.load(fh)


@pytest.fixture(scope="module")
def features() -> list[Feature]:
    found = load_features()
    assert found, f"no feature files under {FEATURES}"
    return found


@pytest.fixture(scope="module")
def scenarios(features) -> list[Scenario]:
    return [s for f in features for s in f.scenarios]


@pytest.fixture(scope="module")
def clauses() -> dict[str, dict]:
    return load_clauses()


def test_every_feature_has_one_area_tag(features):
    bad = [f.path.name for f in features if f.area is None]
    assert not bad, f"features without exactly one @area: tag: {bad}"


def test_every_scenario_has_exactly_one_spec_tag(scenarios):
    bad = [f"{s.where()}: {s.specs or 'none'}" for s in scenarios if len(s.specs) != 1]
    assert not bad, "scenarios need exactly one @spec: tag:\n" + "\n".join(bad)


def test_spec_tags_are_unique(scenarios):
    seen: dict[str, str] = {}
    dupes = []
    for s in scenarios:
        for spec in s.specs:
            if spec in seen:
                dupes.append(f"@spec:{spec} on {seen[spec]} and {s.where()}")
            seen.setdefault(spec, s.where())
    assert not dupes, "duplicate @spec: tags:\n" + "\n".join(dupes)


def test_clause_ids_are_well_formed(scenarios):
    bad = [f"{s.where()}: {spec!r}" for s in scenarios for spec in s.specs
           if not CLAUSE_ID.match(spec)]
    assert not bad, "malformed clause ids (want <area>.<clause>):\n" + "\n".join(bad)


def test_clause_area_matches_feature(features):
    bad = []
    for f in features:
        allowed = f.allowed_areas()
        for s in f.scenarios:
            for spec in s.specs:
                area = spec.split(".", 1)[0]
                if area not in allowed:
                    bad.append(f"{s.where()}: @spec:{spec} not in {sorted(allowed)}")
    assert not bad, "clause areas that do not match their feature:\n" + "\n".join(bad)


def test_every_tag_has_an_entry(scenarios, clauses):
    missing = [f"{s.where()}: @spec:{spec}" for s in scenarios for spec in s.specs
               if spec not in clauses]
    assert not missing, f"tags missing from {CLAUSES.name}:\n" + "\n".join(missing)


def test_entries_have_text_and_source(clauses):
    bad = []
    for cid, entry in clauses.items():
        if not isinstance(entry, dict):
            bad.append(f"{cid}: not a table")
            continue
        unknown = set(entry) - ENTRY_KEYS
        if unknown:
            bad.append(f"{cid}: unknown keys {sorted(unknown)}")
        text = entry.get("text")
        if not isinstance(text, str) or not text.strip():
            bad.append(f"{cid}: empty or missing text")
        source = entry.get("source")
        url = urlparse(source) if isinstance(source, str) else None
        if url is None or url.scheme not in ("http", "https") or not url.netloc:
            bad.append(f"{cid}: source is not an http(s) URL: {source!r}")
        if "paraphrase" in entry and not isinstance(entry["paraphrase"], bool):
            bad.append(f"{cid}: paraphrase must be true or false")
    assert not bad, f"bad entries in {CLAUSES.name}:\n" + "\n".join(bad)


def test_no_orphan_entries(scenarios, clauses):
    used = {spec for s in scenarios for spec in s.specs}
    orphans = sorted(set(clauses) - used)
    assert not orphans, f"entries in {CLAUSES.name} no scenario uses: {orphans}"


def test_entries_follow_feature_order(scenarios, clauses):
    tag_order = [spec for s in scenarios for spec in s.specs if spec in clauses]
    entry_order = [cid for cid in clauses if cid in set(tag_order)]
    assert entry_order == tag_order, (
        f"{CLAUSES.name} is not in feature order; first difference at "
        + next((f"#{i}: {a} vs {b}" for i, (a, b) in enumerate(zip(entry_order, tag_order)) if a != b),
               "the end")
    )
