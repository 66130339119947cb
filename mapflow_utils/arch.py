"""mapflow's architecture, checked: the package's modules in layers, imports only downward (or within a layer), no
import cycle (within a layer either), no private name (``_x``) of one module used by another, and no deferred import
that saves nothing.

Run ``python -m mapflow_utils.arch``: it prints the layers and every violation, and exits 1 if there is one
(``tests/test_arch.py`` runs the same check, and checks that the README's architecture section is this table).
Every import counts, including those inside functions. An import inside a function (deferred) is accepted only
where it avoids a heavy third-party import (:data:`HEAVY`: torch, transformers, papermill, otter, …) that the module
would not load otherwise; a deferred import of a module that brings nothing heavy is an ordinary import written in
the wrong place. Subpackages count by their dotted names (``engine.knockout``); a layer may list a subpackage by its
name, which puts all its modules there.
"""

from __future__ import annotations

import ast
import functools
import sys
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "mapflow_utils"
ROOT = Path(__file__).resolve().parent

#: Third-party packages slow enough to import (seconds, or a GPU stack) that a module may defer them, and the
#: package modules that load them, to a function.
HEAVY = frozenset({"torch", "torchvision", "transformers", "tokenizers", "safetensors", "huggingface_hub", "peft",
                   "accelerate", "gguf", "papermill", "nbformat", "jupytext", "otter", "matplotlib", "ipywidgets",
                   "IPython", "myst_nb", "sphinx", "jupyter_book", "decord", "av", "playwright", "PIL"})

#: Bottom to top: a module may import modules of its own layer or of layers below.
LAYERS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("foundation", "paths, the flows' names, the paper's numbers, result types and verdict rules, cache keys, prompt "
                   "formats",
     ("paths", "flows", "paper", "results", "rules", "cache", "prompts")),
    ("inputs", "TVBench loading, the synthetic generator, token spans",
     ("data", "synthetic", "spans")),
    ("engine", "knockout specs and engine, its first-order estimate (attribution patching), logit lens, attention "
               "rows, App. E masks, the eager reference",
     ("engine",)),
    ("models", "the support matrix and loader, the embedded tiny and SmolLM2 models, tiny copies of HF classes, "
               "the paper's own subjects (PLLaVA, InternVL-Chat conversion, their processor)",
     ("models",)),
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


def layer_of(root: Path = ROOT) -> dict[str, int]:
    """Module (dotted, relative to the package) -> its layer index; a listed subpackage covers its modules."""
    out = {}
    for i, (_, _, mods) in enumerate(LAYERS):
        for m in mods:
            if (root / m).is_dir():
                out.update({x: i for x in modules(root) if x.split(".")[0] == m})
            else:
                out[m] = i
    return out


@functools.lru_cache(maxsize=None)
def modules(root: Path = ROOT) -> list[str]:
    """Every module of the package by dotted name (``__init__`` files as their package's name, the top one left out)."""
    out = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if parts and "__pycache__" not in parts:
            out.append(".".join(parts))
    return out


def _path(module: str, root: Path) -> Path:
    p = root.joinpath(*module.split("."))
    return p / "__init__.py" if p.is_dir() else p.with_suffix(".py")


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    line: int
    private: str = ""  # the private name used, if any
    deferred: bool = False  # inside a function


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _resolve(module: str, node: ast.ImportFrom, known: set[str]) -> tuple[str | None, list[str]]:
    """``(base module or None, [modules named in the import])`` of a ``from … import …`` inside ``module``."""
    if node.level:
        pkg = module.split(".")[:-1] if not _is_package(module, known) else module.split(".")
        pkg = pkg[: len(pkg) - (node.level - 1)] if node.level > 1 else pkg
        base = ".".join(pkg + (node.module.split(".") if node.module else []))
    elif node.module and (node.module == PACKAGE or node.module.startswith(PACKAGE + ".")):
        base = node.module[len(PACKAGE) + 1:] if node.module != PACKAGE else ""
    else:
        return None, []
    named = [f"{base}.{a.name}" if base else a.name for a in node.names]
    return base, [n for n in named if n in known]


@functools.lru_cache(maxsize=None)
def _is_package(module: str, known: frozenset) -> bool:
    return any(k.startswith(module + ".") for k in known)


@functools.lru_cache(maxsize=None)
def edges(module: str, root: Path = ROOT) -> list[Edge]:
    """Every import of a package module in ``module`` (module level and inside functions), and every private name
    of another package module it uses (``from .x import _y`` or ``x._y`` through an imported module)."""
    known = frozenset(modules(root))
    tree = ast.parse(_path(module, root).read_text(), filename=str(_path(module, root)))
    out: list[Edge] = []
    aliases: dict[str, str] = {}  # local name -> package module

    def visit(node, inside: bool):
        for child in ast.iter_child_nodes(node):
            deferred = inside or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.ImportFrom) and child.module != "__future__":
                base, named = _resolve(module, child, known)
                if base is None:
                    continue
                for a, full in zip(child.names, [f"{base}.{a.name}" if base else a.name for a in child.names]):
                    if full in named:  # from . import x  /  from .pkg import mod
                        out.append(Edge(module, full, child.lineno, deferred=inside))
                        aliases[a.asname or a.name] = full
                    elif base in known or base == "":
                        out.append(Edge(module, base, child.lineno, a.name if _private(a.name) else "", inside))
            elif isinstance(child, ast.Import):
                for a in child.names:
                    if a.name.startswith(PACKAGE + "."):
                        target = a.name[len(PACKAGE) + 1:]
                        out.append(Edge(module, target, child.lineno, deferred=inside))
                        if a.asname:
                            aliases[a.asname] = target
            visit(child, deferred)

    visit(tree, False)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases \
                and _private(node.attr):
            out.append(Edge(module, aliases[node.value.id], node.lineno, node.attr))
    return [e for e in out if (e.target != module or e.private == "") and e.target != ""
            or (e.target == "" and e.private)]


@functools.lru_cache(maxsize=None)
def third_party(module: str, root: Path = ROOT) -> frozenset[str]:
    """Top-level names of the third-party packages ``module`` imports at module level."""
    tree = ast.parse(_path(module, root).read_text())
    out = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            out.update(a.name.split(".")[0] for a in node.names if not a.name.startswith(PACKAGE))
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and \
                not node.module.startswith(PACKAGE) and node.module != "__future__":
            out.add(node.module.split(".")[0])
    return frozenset(out)


def heavy(module: str, root: Path = ROOT) -> frozenset[str]:
    """The :data:`HEAVY` packages importing ``module`` loads (its module-level imports, followed through the
    package)."""
    found, todo, seen = set(), [module], set()
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        seen.add(m)
        found |= third_party(m, root) & HEAVY
        todo += [e.target for e in edges(m, root) if not e.deferred and e.target]
    return frozenset(found)


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles of ``graph`` (strongly connected groups of more than one module, or a self-loop), each
    sorted."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return out


def violations(root: Path = ROOT) -> list[str]:
    """Upward imports, cycles, private names used across modules, needless deferred imports and modules in no
    layer, as messages."""
    where = layer_of(root)
    problems = []
    graph: dict[str, set[str]] = {}
    heavy_of = functools.lru_cache(maxsize=None)(lambda m: heavy(m, root))
    for module in modules(root):
        shown = str(_path(module, root).relative_to(root))
        if module not in where:
            if not (root / module.replace(".", "/")).is_dir() or module in where:
                problems.append(f"{shown}: in no layer; add it to mapflow_utils.arch.LAYERS")
            continue
        for e in edges(module, root):
            if e.target == module or not e.target:
                if e.private and not e.target:
                    problems.append(f"{shown}:{e.line}: uses private {PACKAGE}.{e.private}")
                continue
            graph.setdefault(module, set()).add(e.target)
            if e.private:
                problems.append(f"{shown}:{e.line}: uses private {e.target}.{e.private}; make it public where it "
                                "belongs or keep it inside its module")
            if e.target in where and where[e.target] > where[module]:
                src_layer, dst_layer = LAYERS[where[module]][0], LAYERS[where[e.target]][0]
                problems.append(f"{shown}:{e.line}: imports {e.target} ({dst_layer}) from {module} ({src_layer}): "
                                "an upward edge")
            if e.deferred and e.target in where and not (heavy_of(e.target) - heavy_of(module)):
                problems.append(f"{shown}:{e.line}: defers importing {e.target}, which loads nothing heavy that "
                                f"{module} does not already load: import it at the top of the module")
    for group in cycles(graph):
        problems.append(f"import cycle: {' -> '.join(group + group[:1])}; break it (move what both need down a "
                        "layer, or pass it in)")
    return problems


def layer_table() -> str:
    """The layers as a Markdown table, top first (the README's architecture section shows this table)."""
    lines = ["| layer | modules | what |", "|---|---|---|"]
    for name, what, mods in reversed(LAYERS):
        shown = []
        for m in mods:
            if (ROOT / m).is_dir():  # a subpackage: its modules
                inner = [x.split(".", 1)[1] for x in modules() if x.startswith(m + ".")]
                shown.append(f"`{m}/` ({', '.join(f'`{x}`' for x in inner)})")
            else:
                shown.append(f"`{m}`")
        lines.append(f"| {name} | {', '.join(shown)} | {what} |")
    return "\n".join(lines)


def main() -> int:
    print(layer_table())
    problems = violations()
    print()
    print("\n".join(problems) if problems else "no upward import, no cycle, no private name used across modules, "
          "no needless deferred import")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
