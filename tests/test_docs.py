"""The docs: results tables match the results JSON, every relative link resolves, results/ holds only what
the docs show or cite, and the README stays short."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from genlab.report import results_tables

ROOT = Path(__file__).resolve().parents[1]
DOCS = results_tables.doc_paths(ROOT)
#: [text](target) and ![alt](target), the target up to a space or the closing parenthesis
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)[^)]*\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def anchor(heading: str) -> str:
    """GitHub's anchor of a markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = FENCE.sub("", path.read_text())
    return {anchor(m) for m in re.findall(r"^#+ (.+)$", text, re.M)}


def links(path: Path) -> list[str]:
    return LINK.findall(FENCE.sub("", path.read_text()))


def test_the_docs_exist() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in DOCS}
    pages = ("configuration", "training", "sweeps", "evaluation", "speed", "results")
    assert {"README.md", *(f"docs/{page}.md" for page in pages)} <= names
    assert not (ROOT / "RESULTS.md").exists()


def test_readme_is_short() -> None:
    assert len((ROOT / "README.md").read_text().splitlines()) <= 150


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_results_tables_match_the_results_json(path: Path) -> None:
    text = path.read_text()
    assert results_tables.fill(text, ROOT) == text, "stale results table: run `make results-tables`"


def test_every_results_table_is_shown_once() -> None:
    shown = [name for path in DOCS for name in results_tables.marked_tables(path.read_text())]
    assert sorted(shown) == sorted(results_tables.TABLES)


def test_rendering_reads_the_json(tmp_path: Path) -> None:
    source = tmp_path / "results" / "m.json"
    source.parent.mkdir()
    source.write_text('{"metrics": {"fid": 12.345, "kid_mean": 0.5, "kid_std": 0.25}}')
    results_tables.TABLES["test"] = results_tables.Table(
        [results_tables.Column("model"), results_tables.FID, results_tables.KID_ERR],
        [results_tables.Row({"model": "m"}, ["results/m.json"])],
    )
    try:
        text = "a\n<!-- results-table: test -->\nold\n<!-- /results-table -->\nb\n"
        assert results_tables.fill(text, tmp_path) == (
            "a\n<!-- results-table: test -->\n| model | FID | KID |\n|---|---|---|\n"
            "| m | 12.3 | 0.5000 ± 0.2500 |\n<!-- /results-table -->\nb\n"
        )
    finally:
        del results_tables.TABLES["test"]


def test_a_key_reads_into_lists_by_index() -> None:
    data = {"settings": [{"fid": 1.0}, {"fid": 2.0, "round_trip": {"mse": 0.5}}]}
    assert results_tables._get(data, "settings.1.round_trip.mse") == 0.5
    assert results_tables._get(data, "settings.0.fid") == 1.0
    assert results_tables._get(data, "settings.2.fid") is None
    assert results_tables._get(data, "settings.x") is None


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves(path: Path) -> None:
    broken = []
    for target in links(path):
        if re.match(r"[a-z]+:", target):
            continue
        file, _, fragment = target.partition("#")
        resolved = (path.parent / file).resolve() if file else path
        missing_anchor = fragment and resolved.suffix == ".md" and fragment not in anchors(resolved)
        if not resolved.exists() or missing_anchor:
            broken.append(target)
    assert not broken, f"{path.name}: links that do not resolve: {broken}"


def test_results_holds_only_what_the_docs_show_or_cite() -> None:
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "results"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    if not files:
        pytest.skip("not a git checkout")
    text = "".join(p.read_text() for p in DOCS)
    cited = {f for f in files if f in results_tables.sources(ROOT) or f in text}
    cited |= {
        (Path(f).parent / target).as_posix()
        for f in list(cited)
        if f.endswith(".md")
        for target in links(ROOT / f)
    }
    assert sorted(set(files) - cited) == []


def test_configs_link_to_anchors_that_exist() -> None:
    results = anchors(ROOT / "docs" / "results.md")
    for path in sorted((ROOT / "conf").rglob("*.yaml")):
        for fragment in re.findall(r"docs/results\.md#([\w-]+)", path.read_text()):
            assert fragment in results, f"{path.relative_to(ROOT)}: docs/results.md#{fragment}"
