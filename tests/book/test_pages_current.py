"""The book's generated pages match the executed chapters they are made from (`mapflow book` writes them)."""

import json

from mapflow_utils import claims, paths, runner, site


def test_landing_summary_is_current():
    """The landing page's "what reproduces here" block is regenerated from the committed claims files: a chapter
    re-executed without rebuilding the book (or an edited block) fails here."""
    path = paths.BOOK / "_summary.md"
    assert path.exists(), "book/_summary.md is missing: run `make book`"
    assert path.read_text() == site.summary_text(), "book/_summary.md is stale: run `make book` (or `make book-html`)"
    assert "{include} _summary.md" in (paths.BOOK / "intro.md").read_text(), "the landing page must include it"


def test_landing_summary_counts_every_claim():
    text = site.summary_text()
    order = runner.chapter_defaults("verdicts")["chapters"]
    collected = claims.collect([paths.BOOK / f"{c}.claims.json" for c in order])
    assert len(collected) == sum(len(json.loads((paths.BOOK / f"{c}.claims.json").read_text())) for c in order)
    once = [c for _, c in collected if not c.counted_in]  # App. A/B's rows for the book's subject are counted once
    assert len(once) < len(collected), "App. A/B no longer marks the book's own subject's repeated claims"
    assert f"Of {len(once)} verdicts in the book (each claim once)" in text
    for chapter in order:
        assert f"{{doc}}`{chapter}`" in text, f"{chapter} is missing from the landing summary"


def test_status_page_lists_every_chapter_with_its_run_time():
    status = (paths.BOOK / "status.md").read_text()
    for chapter in runner.chapters():
        prov = json.loads((paths.BOOK / f"{chapter}.results.json").read_text())["provenance"]
        assert f"{{doc}}`{chapter}` | {prov['run_seconds']:.0f} |" in status, chapter


def test_readme_pictures_exist():
    """The README shows the built book (`make screenshots`): every image it links is committed and a PNG."""
    import re

    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", (paths.ROOT / "README.md").read_text())
    assert {"book/_static/landing.png", "book/_static/chapter.png"} <= set(links), links
    for link in links:
        data = (paths.ROOT / link).read_bytes()
        assert data[:4] == b"\x89PNG" and len(data) > 10_000, f"{link} is missing or not a screenshot"


def test_the_committed_book_is_one_build():
    """Every executed chapter records the same commit, without local changes, and a date (issue 23: the status page
    showed four commits and "+local changes")."""
    provs = {ch: json.loads((paths.BOOK / f"{ch}.results.json").read_text())["provenance"] for ch in runner.chapters()}
    commits = {p["commit"] for p in provs.values()}
    assert len(commits) == 1 and not next(iter(commits)).endswith("local changes"), \
        f"chapters executed at {commits}: run `make book` on a clean checkout"
    assert all(p.get("executed") for p in provs.values()), "a chapter without its execution date"
