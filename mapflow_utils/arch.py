"""mapflow's architecture, checked: the package's modules in layers, imports only downward (or within a layer),
and no private name (``_x``) of one module used by another.

Run ``python -m mapflow_utils.arch``: it prints the layers and every violation, and exits 1 if there is one
(``tests/test_arch.py`` runs the same check, and checks that the README's architecture section is this table).
Every import counts, including those inside functions (deferred for import cost, never to hide an upward edge).
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "mapflow_utils"
ROOT = Path(__file__).resolve().parent

#: Bottom to top: a module may import modules of its own layer or of layers below.
LAYERS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("foundation", "paths, the paper's numbers, result types and verdict rules, cache keys, prompt formats",
     ("paths", "paper", "results", "rules", "cache", "prompts")),
    ("inputs", "TVBench loading, the synthetic generator, token spans",
     ("data", "synthetic", "spans")),
    ("engine", "knockout specs and engine, its first-order estimate (attribution patching), logit lens, attention "
               "rows, App. E masks, the eager reference",
     ("specs", "knockout", "attribution", "lens", "attention", "pathways", "reference")),
    ("models", "the support matrix and loader, the embedded tiny and SmolLM2 models, tiny copies of HF classes, "
               "the paper's own subjects (PLLaVA, InternVL-Chat conversion, their processor)",
     ("models", "backbone", "tiny", "smol", "tiny_vlms", "block_processor", "pllava", "internvl_chat")),
    ("evaluation", "a question prepared for interventions, predictions, accuracy and frame controls, probes",
     ("evaluate", "probes")),
    ("training", "the embedded models' training stages, the vision tower's perception pretraining",
     ("train", "train_smol", "perception")),
    ("experiments", "the chapters' experiments: sweeps, accuracy under knockout, lens, attention, pathways",
     ("experiments",)),
    ("show", "figures, tables, claims (measured, graded, written as files)",
     ("plots", "tables", "claims")),
    ("run", "the chapters' shared parameters (defined once) and the chapter runner: papermill (one process or "
            "shards), the files beside an executed chapter",
     ("parameters", "runner")),
    ("top", "chapter helpers, model cards, classroom assignments, the book site (build, links, figure-data "
            "extension), the mapflow command, this check",
     ("chapter", "cards", "classroom", "publish", "sphinx_links", "site", "cli", "arch")),
)


def layer_of() -> dict[str, int]:
    return {m: i for i, (_, _, mods) in enumerate(LAYERS) for m in mods}


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    line: int
    private: str = ""  # the private name used, if any


def _package_module(name: str | None) -> str | None:
    """``mapflow_utils.x.y`` -> ``x``; the package itself -> ``""``; anything else -> None."""
    if name is None:
        return None
    if name == PACKAGE:
        return ""
    if name.startswith(PACKAGE + "."):
        return name.split(".")[1]
    return None


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def edges(path: Path, root: Path = ROOT) -> list[Edge]:
    """Every import of a package module in ``path`` (module level and inside functions), and every private name
    of another package module it uses (``from .x import _y`` or ``x._y`` through an imported module)."""
    src = path.stem
    tree = ast.parse(path.read_text(), filename=str(path))
    out: list[Edge] = []
    aliases: dict[str, str] = {}  # local name -> package module
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.module == "__future__":
                continue
            base = "" if node.level == 1 and node.module is None else \
                node.module.split(".")[0] if node.level == 1 else _package_module(node.module)
            if base is None:
                continue
            for a in node.names:
                if base == "":  # from . import x  /  from mapflow_utils import x
                    if (root / f"{a.name}.py").exists():
                        out.append(Edge(src, a.name, node.lineno))
                        aliases[a.asname or a.name] = a.name
                    elif _private(a.name):
                        out.append(Edge(src, "", node.lineno, a.name))
                else:
                    out.append(Edge(src, base, node.lineno, a.name if _private(a.name) else ""))
        elif isinstance(node, ast.Import):
            for a in node.names:
                mod = _package_module(a.name)
                if mod:
                    out.append(Edge(src, mod, node.lineno))
                    if a.asname:
                        aliases[a.asname] = mod
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases \
                and _private(node.attr):
            out.append(Edge(src, aliases[node.value.id], node.lineno, node.attr))
    return [e for e in out if e.target != src or e.private == ""]


def violations(root: Path = ROOT) -> list[str]:
    """Upward imports, private names used across modules, and modules in no layer, as messages."""
    where = layer_of()
    problems = []
    for path in sorted(root.glob("*.py")):
        if path.stem == "__init__":
            continue
        if path.stem not in where:
            problems.append(f"{path.name}: in no layer; add it to mapflow_utils.arch.LAYERS")
            continue
        for e in edges(path, root):
            if e.target == e.source:
                continue
            if e.private:
                problems.append(f"{path.name}:{e.line}: uses private {e.target or PACKAGE}.{e.private}; make it "
                                "public where it belongs or keep it inside its module")
            if e.target in where and where[e.target] > where[e.source]:
                src_layer, dst_layer = LAYERS[where[e.source]][0], LAYERS[where[e.target]][0]
                problems.append(f"{path.name}:{e.line}: imports {e.target} ({dst_layer}) from {e.source} "
                                f"({src_layer}): an upward edge")
    return problems


def layer_table() -> str:
    """The layers as a Markdown table, top first (the README's architecture section shows this table)."""
    lines = ["| layer | modules | what |", "|---|---|---|"]
    for name, what, mods in reversed(LAYERS):
        lines.append(f"| {name} | {', '.join(f'`{m}`' for m in mods)} | {what} |")
    return "\n".join(lines)


def main() -> int:
    print(layer_table())
    problems = violations()
    print()
    print("\n".join(problems) if problems else "no upward import, no private name used across modules")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
