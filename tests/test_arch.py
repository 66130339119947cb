"""The package's layers hold: no upward import, no private name used across modules, every module in a layer; and
the README's architecture section is the checked table."""

from mapflow_utils import arch, paths


def test_the_package_has_no_upward_or_private_import():
    assert arch.violations() == []


def test_the_check_catches_what_it_forbids(tmp_path):
    (tmp_path / "data.py").write_text("def f():\n    from .experiments import sweep\n")  # upward, deferred
    (tmp_path / "experiments.py").write_text("from . import knockout as K\nK._plan(None)\n")  # private attribute
    (tmp_path / "knockout.py").write_text("from .spans import _helper\n")  # private import (and downward: fine)
    (tmp_path / "spans.py").write_text("")
    (tmp_path / "newthing.py").write_text("")
    layers = arch.LAYERS
    try:
        arch.LAYERS = (("inputs", "", ("data", "spans")), ("engine", "", ("knockout",)),
                       ("experiments", "", ("experiments",)))
        got = arch.violations(tmp_path)
    finally:
        arch.LAYERS = layers
    assert any("data.py:2: imports experiments (experiments) from data (inputs)" in p for p in got)
    assert any("experiments.py:2: uses private knockout._plan" in p for p in got)
    assert any("knockout.py:1: uses private spans._helper" in p for p in got)
    assert any("newthing.py: in no layer" in p for p in got)
    # data -> experiments also loads nothing heavy: a needless deferral on top of the upward edge
    assert any("data.py:2: defers importing experiments" in p for p in got)
    assert len(got) == 5, got


def test_the_check_rejects_a_cycle_inside_a_layer_and_a_deferral_that_saves_nothing(tmp_path):
    """Two modules of one layer importing each other (one of them inside a function, as cycles are usually hidden)
    is a cycle; a deferred import of a module that loads nothing heavy is rejected, one that avoids torch is not;
    modules of a subpackage listed as a layer entry belong to that layer."""
    (tmp_path / "plots.py").write_text("from . import tables\n")
    (tmp_path / "tables.py").write_text("def f():\n    from . import plots\n")  # cycle, and a needless deferral
    (tmp_path / "claims.py").write_text("def g():\n    from .engine import knockout\n")  # avoids torch: fine
    (tmp_path / "engine").mkdir()
    (tmp_path / "engine" / "__init__.py").write_text("")
    (tmp_path / "engine" / "knockout.py").write_text("import torch\nfrom ..spans import Spans\n")
    (tmp_path / "spans.py").write_text("")
    layers = arch.LAYERS
    try:
        arch.LAYERS = (("inputs", "", ("spans",)), ("engine", "", ("engine",)), ("show", "", ("plots", "tables",
                                                                                             "claims")))
        got = arch.violations(tmp_path)
    finally:
        arch.LAYERS = layers
    assert "import cycle: plots -> tables -> plots" in got[-1], got
    assert any("tables.py:2: defers importing plots, which loads nothing heavy" in p for p in got), got
    assert not any("claims.py" in p for p in got), got  # deferring torch is what deferral is for
    assert not any("engine" in p for p in got), got  # the subpackage's module is in its layer, its import downward
    assert len(got) == 2, got


def test_readme_shows_the_layers():
    assert arch.layer_table() in (paths.ROOT / "README.md").read_text()
