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
    got = arch.violations(tmp_path)
    assert any("data.py:2: imports experiments (experiments) from data (inputs)" in p for p in got)
    assert any("experiments.py:2: uses private knockout._plan" in p for p in got)
    assert any("knockout.py:1: uses private spans._helper" in p for p in got)
    assert any("newthing.py: in no layer" in p for p in got)
    assert len(got) == 4


def test_readme_shows_the_layers():
    assert arch.layer_table() in (paths.ROOT / "README.md").read_text()
