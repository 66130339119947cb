"""A Sphinx extension of the book (``_config.yml``: ``sphinx.extra_extensions``): under every figure of a chapter,
a link to the data behind it, the ``<chapter>.figures.json`` its kernel wrote beside the executed notebook (every
figure's curves, bars or maps, in drawing order, each with its title). The files are copied to ``_data/`` in the
HTML output, so the link works offline and on the published site.
"""

from __future__ import annotations

import shutil
from pathlib import Path

#: Where the figures' data go in the HTML output, and the words of the link.
DATA_DIR = "_data"
LINK_TEXT = "data behind the figures (JSON)"


def _data_file(srcdir: str, docname: str) -> Path:
    return Path(srcdir) / f"{docname}.figures.json"


def add_links(app, doctree, docname: str) -> None:
    from docutils import nodes

    import json

    f = _data_file(app.srcdir, docname)
    if not f.is_file() or not json.loads(f.read_text()).get("figures"):
        return
    href = "../" * docname.count("/") + f"{DATA_DIR}/{Path(docname).name}.figures.json"
    for figure in doctree.findall(nodes.figure):
        para = nodes.paragraph(classes=["figure-data"])
        para += nodes.reference("", LINK_TEXT, refuri=href, internal=False)
        legend = nodes.legend()
        legend += para
        figure += legend


def copy_data(app, exception) -> None:
    if exception is not None or getattr(app.builder, "format", "") != "html":
        return
    out = Path(app.outdir) / DATA_DIR
    out.mkdir(parents=True, exist_ok=True)
    for f in Path(app.srcdir).rglob("*.figures.json"):
        if not {"_build", ".venv", "runs", "data"} & set(f.relative_to(app.srcdir).parts):
            shutil.copy2(f, out / f.name)


def setup(app):
    app.connect("doctree-resolved", add_links)
    app.connect("build-finished", copy_data)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
