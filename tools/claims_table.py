"""The claims table of issue 22's closing note: each claim's paper number beside the book's subject now, the book's
subject at an earlier commit, and the from-scratch pair (the ``(base)`` rows of the App. A/B chapter).

    .venv/bin/python tools/claims_table.py --previous e05daaf [--new book]

Reads the ``<chapter>.claims.json`` files (:func:`mapflow_utils.claims.read`) of ``--new`` (a folder) and of the
``book/`` folder at ``--previous`` (a git revision); prints a Markdown table and the verdict counts per column.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mapflow_utils.claims import Claim, collect  # noqa: E402
from mapflow_utils.rules import VERDICTS  # noqa: E402
from mapflow_utils.runner import chapter_defaults  # noqa: E402
from mapflow_utils.tables import markdown_table  # noqa: E402

#: The App. A/B chapter's suffixes of a claim rerun on the from-scratch pair, and on the others it compares.
SCRATCH, RERUNS = "(base)", ("(base)", "(smol)", "(deep)")


def claims_at(folder: str | None, rev: str | None) -> list[tuple[str, Claim]]:
    """``[(chapter, claim)]`` in the claims page's order, from a folder's claims files or ``book/``'s at a revision."""
    chapters = chapter_defaults("verdicts")["chapters"]
    if rev is None:
        return collect([Path(folder) / f"{ch}.claims.json" for ch in chapters])
    out = []
    for ch in chapters:
        shown = subprocess.run(["git", "show", f"{rev}:book/{ch}.claims.json"], capture_output=True, text=True)
        if shown.returncode == 0:
            out += [(ch, Claim(**d)) for d in json.loads(shown.stdout)]
    return out


def cell(c: Claim | None) -> str:
    return "—" if c is None else f"{c.ours} (**{c.verdict}**)"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--new", default="book", help="folder of the claims files now (default book/)")
    ap.add_argument("--previous", required=True, help="git revision of the previous pair's book/")
    a = ap.parse_args(argv)
    new, old = claims_at(a.new, None), claims_at(None, a.previous)
    old_by = {(ch, c.key): c for ch, c in old}
    scratch = {c.figure.removesuffix(f" {SCRATCH}"): c for _, c in new if c.figure.endswith(SCRATCH)}
    rows, counts = [], {k: Counter() for k in ("new", "previous", "scratch")}
    for ch, c in new:
        if c.figure.endswith(RERUNS):
            continue  # App. A/B's reruns: the book's subject's repeat the chapters', the from-scratch is a column
        p, s = old_by.get((ch, c.key)), scratch.get(c.figure)
        rows.append([ch, c.figure, c.paper, cell(c), cell(p), cell(s)])
        for k, x in (("new", c), ("previous", p), ("scratch", s)):
            if x is not None:
                counts[k][x.verdict] += 1
    print(markdown_table(rows, ["chapter", "claim", "paper", "new SmolLM2 pair",
                                f"previous SmolLM2 pair ({a.previous})", "from-scratch pair"]))
    print()
    for k, n in counts.items():
        print(f"{k}: " + " / ".join(f"{n[v]} {v}" for v in VERDICTS))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
