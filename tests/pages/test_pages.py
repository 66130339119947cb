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


def test_every_chapter_figure_links_the_data_behind_it():
    """Under each figure of a chapter, a link to ``_data/<chapter>.figures.json`` (mapflow_utils.sphinx_links), a
    file in the built site holding every figure's data with its title."""
    linked = 0
    for page in sorted((HTML / "book").glob("*.html")):
        html = page.read_text()
        figures = re.findall(r"<figure[^>]*>(.*?)</figure>", html, re.S)
        if not figures:
            continue
        for body in figures:
            m = re.search(r'class="[^"]*figure-data[^"]*"[^>]*>\s*<a[^>]*href="([^"]+)"', body)
            assert m, f"{page.name}: a figure without its data link"
            target = (page.parent / m.group(1)).resolve()
            assert target.is_file(), f"{page.name}: the data link points to a missing {target}"
            drawn = json.loads(target.read_text())["figures"]
            assert drawn and all("title" in d and d["data"] for d in drawn)
            linked += 1
    assert linked >= 20, f"only {linked} figures link their data"


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
    """Every chapter with a curve explorer shows its three levels (figure, subject, task), each a dropdown of two or
    more options or a label when there is one, rendered from the saved state."""
    explorers = {HTML / "book" / f"{src.stem}.html": src.read_text().count("plots.curve_explorer(")
                 for src in paths.NOTEBOOKS.glob("*.md")}
    assert sum(explorers.values()) >= 5, explorers
    for page, n in explorers.items():
        if not n:
            continue
        dom = opened[page][0]
        # a dropdown's <label>, or a Label widget's <div> "level: choice" when the level has one entry
        labels = re.findall(r'<(?:label|div)[^>]*class="[^"]*widget-label[^"]*"[^>]*>([^<]*)<', dom)
        for level in ("figure", "subject", "task"):
            found = sum(l == level or l.startswith(f"{level}: ") for l in labels)
            assert found >= n, f"{page.name}: {found} '{level}' selectors, expected {n}"
        selects = re.findall(r"<select[^>]*>(.*?)</select>", dom, re.S)
        assert selects and all(s.count("<option") >= 2 for s in selects), f"{page.name}: selectors not rendered"
        assert "all tasks" in dom, f"{page.name}: the task selector lacks the pooled choice"


# ------------------------------------------------------------------------------ widgets, used as a reader uses them

# What a reader sees of one cell's widgets: the visible labels, each visible dropdown's (name, choice), and the
# visible images (blob URLs: one per pre-rendered figure, so a different figure is a different URL).
_SEEN_JS = """(cell) => {
  const shown = e => !!(e.offsetWidth || e.offsetHeight || e.getClientRects().length);
  return {
    labels: [...cell.querySelectorAll('.widget-label')].filter(shown).map(e => e.textContent.trim()),
    choices: [...cell.querySelectorAll('.widget-dropdown')].filter(shown).map(
        d => [d.querySelector('label').textContent.trim(), d.querySelector('select').selectedOptions[0].text]),
    images: [...cell.querySelectorAll('img')].filter(shown).map(i => i.src),
  };
}"""


@pytest.fixture(scope="module")
def browser():
    sync = pytest.importorskip("playwright.sync_api", reason="playwright is in the dev extra: `make install`")
    with sync.sync_playwright() as p:
        b = p.chromium.launch(executable_path=_chromium(), args=["--no-sandbox", "--allow-file-access-from-files"])
        yield b
        b.close()


def _load(browser, page: Path):
    tab = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    tab.on("pageerror", lambda e: errors.append(str(e)))
    tab.goto(page.as_uri())
    tab.wait_for_load_state("load")
    return tab, errors


def _widget_cells(tab, selector: str) -> list:
    tab.wait_for_selector(selector, timeout=30_000)
    return [c for c in tab.locator(".cell_output").all() if c.locator(selector).count()]


def drive_slider(tab, cell) -> dict:
    """Move a layer slider one step with the keyboard, then press Play: what the reader sees after each."""
    seen = {"start": cell.evaluate(_SEEN_JS)}
    cell.locator(".noUi-handle").first.focus()
    tab.keyboard.press("ArrowRight")
    tab.wait_for_timeout(400)
    seen["moved"] = cell.evaluate(_SEEN_JS)
    cell.locator(".widget-play button").first.click()
    tab.wait_for_timeout(2500)  # the Play widget advances every 700 ms
    seen["played"] = cell.evaluate(_SEEN_JS)
    return seen


def _layer(seen: dict) -> int:
    found = [int(m.group(1)) for l in seen["labels"] for m in [re.search(r"layer (\d+) of \d+", l)] if m]
    assert len(found) == 1, f"expected one visible 'layer i of n' readout, saw {seen['labels']}"
    return found[0]


def _slider_failures(tab, cells) -> list[str]:
    bad = []
    for i, cell in enumerate(cells):
        seen = drive_slider(tab, cell)
        start, moved, played = (_layer(seen[k]) for k in ("start", "moved", "played"))
        if moved != start + 1:
            bad.append(f"slider {i}: the arrow key moved the readout {start} -> {moved}")
        if seen["moved"]["images"] == seen["start"]["images"]:
            bad.append(f"slider {i}: moving the slider did not change the figure")
        if played <= moved:
            bad.append(f"slider {i}: Play did not advance the layer ({moved} -> {played})")
    return bad


def _slider_pages() -> list[Path]:
    return [p for p in _pages() if "IntSliderModel" in p.read_text()]


def test_every_layer_slider_responds(browser):
    """Every layer slider, driven in Chromium: an arrow key moves the readout to the next layer and shows another
    figure; Play advances it further. No script error on the way."""
    pages = _slider_pages()
    assert pages, "no built page has a layer slider"
    for page in pages:
        tab, errors = _load(browser, page)
        bad = _slider_failures(tab, _widget_cells(tab, ".widget-slider"))
        widget_errors = [e for e in errors if "THEBE" not in e]
        tab.close()
        assert not bad and not widget_errors, f"{page.name}: {bad} {widget_errors}"


def test_slider_check_fails_when_font_awesome_replaces_the_play_icon(browser):
    """The check above can fail: the same page without book/_js/fontawesome-nest.js (the theme's Font Awesome then
    swaps the Play button's <i> for an <svg> and every slider change throws) is reported stuck."""
    page = _slider_pages()[0]
    broken = page.with_name(f"_broken_{page.name}")
    broken.write_text(re.sub(r'<script src="[^"]*fontawesome-nest\.js[^"]*"></script>', "", page.read_text()))
    try:
        tab, errors = _load(browser, broken)
        bad = _slider_failures(tab, _widget_cells(tab, ".widget-slider")[:1])
        tab.close()
    finally:
        broken.unlink()
    assert any("did not" in b or "moved the readout" in b for b in bad), bad
    assert any("className" in e for e in errors), errors


def test_explorers_keep_choices_and_change_the_figure(browser):
    """Every figure explorer with two or more dropdowns, driven in Chromium: choosing the second option of the last
    dropdown changes the figure; then changing the first dropdown changes the figure again and keeps the other
    dropdowns' choices where the new branch offers the same options."""
    pages = [p for p in _pages() if "DropdownModel" in p.read_text()]
    assert pages, "no built page has a dropdown explorer"
    driven = 0
    for page in pages:
        tab, errors = _load(browser, page)
        for i, cell in enumerate(_widget_cells(tab, ".widget-dropdown select")):
            start = cell.evaluate(_SEEN_JS)
            selects = [s for s in cell.locator(".widget-dropdown select").all() if s.is_visible()]
            if not selects:
                continue
            last = selects[-1]
            last.select_option(index=1)
            tab.wait_for_timeout(300)
            after = cell.evaluate(_SEEN_JS)
            assert after["images"] != start["images"], f"{page.name} explorer {i}: choosing changed no figure"
            if len(selects) > 1:
                selects[0].select_option(index=1)
                tab.wait_for_timeout(300)
                moved = cell.evaluate(_SEEN_JS)
                assert moved["images"] != after["images"], f"{page.name} explorer {i}: the first dropdown changed no figure"
                kept = dict(after["choices"][1:])
                now = dict(moved["choices"][1:])
                for name, choice in kept.items():
                    if name in now:
                        assert now[name] == choice, \
                            f"{page.name} explorer {i}: changing {after['choices'][0][0]} reset {name}: {choice} -> {now[name]}"
            driven += 1
        tab.close()
        assert not [e for e in errors if "THEBE" not in e], f"{page.name}: {errors}"
    assert driven >= 5, f"only {driven} explorers driven"


#: What a reader must never see on a page: stderr output, a traceback, a Python warning, a machine path.
_DIRT = {
    "stderr output": re.compile(r'class="[^"]*\boutput stderr\b'),
    "a traceback": re.compile(r"Traceback \(most recent call last\)"),
    "a Python warning": re.compile(r"\b\w*Warning: "),
    "a machine path": re.compile(r"(/home/|/root/|/tmp/|/work/|/Users/|[A-Z]:\\\\)[\w./-]+"),
}


def page_dirt(html: str) -> list[str]:
    """What of :data:`_DIRT` a page's text shows (scripts and the saved widget state excluded)."""
    text = re.sub(r"<script.*?</script>", "", html, flags=re.S)
    return [f"{what}: {m.group(0)[:80]!r}" for what, rx in _DIRT.items() for m in [rx.search(text)] if m]


def test_dirt_check_sees_warnings_tracebacks_and_paths():
    page = ('<div class="output stderr"><pre>/work/main/mapflow_utils/plots.py:98: RuntimeWarning: More than 20 '
            'figures</pre></div>')
    found = " ".join(page_dirt(page))
    assert "stderr output" in found and "a Python warning" in found and "a machine path" in found
    assert not page_dirt('<p>layer 3 of 30: -12.5% (95% CI -20.1 to -4.0)</p><script>"/tmp/x"</script>')


def test_no_page_shows_a_warning_a_traceback_or_a_machine_path():
    bad = {p.name: d for p in _pages() for d in [page_dirt(p.read_text())] if d}
    assert not bad, f"pages a reader should not see this way: {bad}"
