"""The built book in a real browser (`make test-pages`): every page of `_build/html` opened offline in headless
Chromium (Debian's `chromium`; the make target installs it when missing). Checks that each widget renders from the
state saved in the executed notebook, that the layer slider's views (slider, Play button, 1-based readout) exist,
and that no page makes a network request (Chromium's own network log, not a scan of the HTML)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from mapflow_utils import paths

HTML = paths.ROOT / "_build" / "html"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def _pages() -> list[Path]:
    if not (HTML / "index.html").exists():
        pytest.fail(f"{HTML} is not built: run `make test-pages` (it builds the book's HTML first)")
    return sorted(p for p in HTML.rglob("*.html") if not {"_static", "_sources", "_downloads"} & set(p.parts))


def _chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.fail("Chromium is not installed: `make test-pages` installs Debian's chromium (apt-get install chromium)")
    return exe


def _page_requests(netlog: Path) -> list[str]:
    """The remote URLs a page itself asked for, from Chromium's network log. Chromium's own background requests
    (time sync, accounts) carry no page initiator; everything a file:// page loads carries the initiator "file://"."""
    log = json.loads(netlog.read_text(errors="replace"))
    names = {v: k for k, v in log["constants"]["logEventTypes"].items()}
    url, by_page = {}, set()
    for event in log["events"]:
        params, source = event.get("params", {}), event["source"]["id"]
        if "url" in params and names[event["type"]] in ("REQUEST_ALIVE", "URL_REQUEST_START_JOB"):
            url.setdefault(source, params["url"])
        if names[event["type"]] == "URL_REQUEST_START_JOB" and str(params.get("initiator", "")).startswith("file://"):
            by_page.add(source)
    return sorted({url[s] for s in by_page if s in url and re.match(r"(https?|wss?)://", url[s])})


def _open(page: Path, tmp: Path) -> tuple[str, list[str]]:
    """The page's DOM after its scripts ran, and every remote URL the page requested while loading."""
    netlog = tmp / f"{page.stem}.netlog.json"
    out = subprocess.run([_chromium(), "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                          "--disable-background-networking", "--disable-component-update", "--disable-sync",
                          "--allow-file-access-from-files", "--virtual-time-budget=8000",
                          f"--log-net-log={netlog}", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, f"chromium failed on {page}: {out.stderr[-2000:]}"
    assert netlog.exists(), f"chromium wrote no network log for {page}"
    return out.stdout, _page_requests(netlog)


def test_network_check_sees_a_page_that_loads_from_a_cdn(tmp_path):
    """The no-network check itself can fail: a page with a CDN script and a remote image is caught, and
    Chromium's own background requests are not blamed on it."""
    probe = tmp_path / "probe.html"
    probe.write_text('<html><body><script src="https://cdn.jsdelivr.net/npm/probe.js"></script>'
                     '<img src="http://example.invalid/a.png"></body></html>')
    _, urls = _open(probe, tmp_path)
    assert urls == ["http://example.invalid/a.png", "https://cdn.jsdelivr.net/npm/probe.js"], urls


@pytest.fixture(scope="module")
def opened(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("chromium")
    return {p: _open(p, tmp) for p in _pages()}


def test_every_toc_page_is_built():
    built = {p.relative_to(HTML).with_suffix("").as_posix() for p in _pages()}
    for line in (paths.ROOT / "_toc.yml").read_text().splitlines():
        m = re.search(r"file: (\S+)", line) or re.search(r"^root: (\S+)", line)
        if m:
            assert m.group(1) in built, f"{m.group(1)} is in _toc.yml but not in {HTML}"


def test_no_page_requests_the_network(opened):
    for page, (_, urls) in opened.items():
        assert not urls, f"{page.name} requested {urls[:5]}: the book must render offline"


def test_widgets_render_from_saved_state(opened):
    pages_with_widgets = 0
    for page, (dom, _) in opened.items():
        html = page.read_text()
        n_views = html.count(WIDGET_VIEW)
        if not n_views:
            continue
        pages_with_widgets += 1
        assert "application/vnd.jupyter.widget-state+json" in html, f"{page.name}: widget views without saved state"
        rendered = len(re.findall(r'class="[^"]*\bjupyter-widgets\b', dom))
        assert rendered >= n_views, f"{page.name}: {n_views} widget views saved, {rendered} rendered in Chromium"
    assert pages_with_widgets, "no built page has a widget: the Fig. 5 layer slider is missing"


def test_layer_slider_views(opened):
    sliders = {p: dom for p, (dom, _) in opened.items() if re.search(r'class="[^"]*\bwidget-slider\b', dom)}
    assert sliders, "no page rendered a slider"
    for page, dom in sliders.items():
        assert "widget-play" in dom or "fa-play" in dom, f"{page.name}: the layer slider has no Play button"
        labels = re.findall(r'class="[^"]*widget-label[^"]*"[^>]*>([^<]*)<', dom)
        assert any("layer" in l.lower() for l in labels), f"{page.name}: slider labels {labels}"
        assert not any("0-based" in l for l in labels), f"{page.name}: the slider counts from 0: {labels}"
        # the slider's own readout counts from 0 (it drives a Stack's index), so it is hidden; the visible
        # readout is a label "layer i of n" in the figures' 1-based numbering
        shown = [r for r in re.findall(r'<div class="widget-readout"([^>]*)>([^<]*)<', dom) if "none" not in r[0]]
        assert not shown, f"{page.name}: a 0-based slider readout is visible: {shown}"
        readouts = [int(i) for l in labels for i in re.findall(r"layer (\d+) of \d+", l)]
        assert readouts and min(readouts) >= 1, f"{page.name}: no 1-based 'layer i of n' readout in {labels}"


def test_every_chapter_figure_is_named_and_captioned():
    """Each figure cell of a chapter (``mystnb.figure`` in its MyST source) is a numbered <figure> with its name as
    anchor and a caption on the built page, so prose and readers can refer to it."""
    import jupytext

    named = 0
    for source in sorted(paths.NOTEBOOKS.glob("*.md")):
        figures = [c.metadata["mystnb"]["figure"] for c in jupytext.read(source).cells
                   if "figure" in c.metadata.get("mystnb", {})]
        html = (HTML / "book" / f"{source.stem}.html").read_text()
        for fig in figures:
            found = re.search(rf'<figure[^>]*id="{re.escape(fig["name"])}"[^>]*>(.*?)</figure>', html, re.S)
            assert found, f"{source.stem}: figure {fig['name']!r} is not a named <figure> on the built page"
            assert "<img" in found.group(1) and "<figcaption" in found.group(1), \
                f"{source.stem}: figure {fig['name']!r} has no image or no caption"
            named += 1
    assert named >= 20, f"only {named} named figures in the chapters"


def test_parameters_cells_wrap_instead_of_scrolling():
    """Each chapter page links the book's stylesheet, which wraps the parameters cell's long lines."""
    css = HTML / "_static" / "mapflow.css"
    assert css.exists() and "tag_parameters" in css.read_text() and "pre-wrap" in css.read_text()
    for source in sorted(paths.NOTEBOOKS.glob("*.md")):
        html = (HTML / "book" / f"{source.stem}.html").read_text()
        assert "_static/mapflow.css" in html, f"{source.stem} does not load mapflow.css"
        if "tags: [parameters]" in source.read_text():
            assert 'class="cell tag_parameters' in html, f"{source.stem}: no parameters cell on the page"


def test_curve_explorers_render_their_choices(opened):
    """Every chapter with a curve explorer shows its three dropdowns (figure, subject, task) with their options,
    rendered from the saved state."""
    explorers = {HTML / "book" / f"{src.stem}.html": src.read_text().count("plots.curve_explorer(")
                 for src in paths.NOTEBOOKS.glob("*.md")}
    assert sum(explorers.values()) >= 5, explorers
    for page, n in explorers.items():
        if not n:
            continue
        dom = opened[page][0]
        labels = re.findall(r'<label[^>]*class="[^"]*widget-label[^"]*"[^>]*>([^<]*)<', dom)
        for level in ("figure", "subject", "task"):
            assert labels.count(level) >= n, f"{page.name}: {labels.count(level)} '{level}' selectors, expected {n}"
        selects = re.findall(r"<select[^>]*>(.*?)</select>", dom, re.S)
        assert len(selects) >= 3 * n and all("<option" in s for s in selects), f"{page.name}: selectors not rendered"
        assert "all tasks" in dom, f"{page.name}: the task selector lacks the pooled choice"
