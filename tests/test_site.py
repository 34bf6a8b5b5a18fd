"""The documentation site (mkdocs.yml) builds without a warning, and its API reference documents
every public name: each name of a module's ``__all__`` has its entry (an anchor named by its
path) on the module's page under docs/reference/. Every reproducible figure has a page of its
own, docs/figures/<id>.md, in the nav, with the same sections and its picture."""
import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from dlnfusion.cli import FIGURES

ROOT = Path(__file__).resolve().parents[1]

# docs/reference/<page>.md documents the module; every module listed here defines __all__.
PAGES = {"dlnfusion": "dlnfusion", "theory": "dlnfusion.theory", "reduced": "dlnfusion.reduced",
         "compare": "dlnfusion.compare", "interventions": "dlnfusion.interventions",
         "transforms": "dlnfusion.transforms", "data": "dlnfusion.data",
         "sweep": "dlnfusion.sweep", "plot": "dlnfusion.plot", "training": "dlnfusion.training",
         "networks": "dlnfusion.networks", "results": "dlnfusion.results",
         "checks": "dlnfusion.checks"}

# The sections of every figure page (docs/figures/<id>.md), in this order, and their anchors.
FIGURE_SECTIONS = {"What the paper claims": "what-the-paper-claims", "Reproduce": "reproduce",
                   "The figure": "the-figure", "The numbers": "the-numbers",
                   "Caveats": "caveats"}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """Build the site once, strictly (a warning fails the build), into a temporary folder."""
    out = tmp_path_factory.mktemp("site")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                           str(out)], cwd=ROOT, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, (
        "mkdocs build --strict failed (the docs extra installs mkdocs: pip install -e "
        f"'.[docs]'):\n{proc.stdout}\n{proc.stderr}")
    return out


def _anchors(site, page):
    html = (site / "reference" / f"{page}.html").read_text(encoding="utf-8")
    return set(re.findall(r'id="([\w.]+)"', html))


def _public_names(module):
    mod = importlib.import_module(module)
    names = list(mod.__all__)
    if module == "dlnfusion":  # the submodules have pages of their own
        names = [n for n in names if n not in mod.SUBMODULES]
    return names


def test_the_site_builds_strictly(site):
    for page in ["index.html", "getting-started.html", "api.html", "gallery.html",
                 "corrections.html"]:
        assert (site / page).is_file(), page
    assert (site / "gallery" / "zhang2024-fig3c.png").is_file()


@pytest.mark.parametrize("page", ["dlnfusion", "theory"])
def test_every_name_of_the_fronts_is_in_the_reference(site, page):
    module = PAGES[page]
    anchors = _anchors(site, page)
    missing = [n for n in _public_names(module) if f"{module}.{n}" not in anchors]
    assert not missing, (f"{module}.__all__ names without an entry in the API reference "
                         f"(add them to the members of docs/reference/{page}.md): {missing}")


@pytest.mark.parametrize("page", sorted(PAGES))
def test_every_public_name_of_every_module_is_in_the_reference(site, page):
    """A function named like its own submodule (``compare.deficit_sweep``) is documented by
    its full path (``dlnfusion.compare.deficit_sweep.deficit_sweep``)."""
    module = PAGES[page]
    anchors = _anchors(site, page)
    missing = [n for n in _public_names(module)
               if f"{module}.{n}" not in anchors and f"{module}.{n}.{n}" not in anchors]
    assert not missing, (f"{module}.__all__ names without an entry in the API reference "
                         f"(add them to docs/reference/{page}.md): {missing}")
    members = (ROOT / "docs" / "reference" / f"{page}.md").read_text()
    assert f"::: {module}\n" in members


def _nav_pages(nav):
    """The page paths of an mkdocs nav (nested lists of {title: page or list})."""
    for item in nav:
        entries = item.values() if isinstance(item, dict) else [item]
        for entry in entries:
            if isinstance(entry, list):
                yield from _nav_pages(entry)
            else:
                yield entry


@pytest.mark.parametrize("fig_id", sorted(FIGURES))
def test_every_figure_has_its_page(site, fig_id):
    """docs/figures/<id>.md exists for every id of ``dlnfusion.cli.FIGURES``, is in the nav,
    has the figure sections in order and shows docs/gallery/<id>.png; the built page has the
    sections' anchors and the picture."""
    import yaml

    page = ROOT / "docs" / "figures" / f"{fig_id}.md"
    assert page.is_file(), f"{fig_id} has no page: write docs/figures/{fig_id}.md"
    nav = list(_nav_pages(yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"]))
    assert f"figures/{fig_id}.md" in nav, f"add figures/{fig_id}.md to the nav of mkdocs.yml"
    text = page.read_text(encoding="utf-8")
    headings = [h for h in re.findall(r"^## (.+?)\s*$", text, flags=re.M)
                if h in FIGURE_SECTIONS]
    assert headings == list(FIGURE_SECTIONS), (f"docs/figures/{fig_id}.md: sections {headings}, "
                                               f"expected {list(FIGURE_SECTIONS)} in this order")
    images = re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", text)
    assert f"../gallery/{fig_id}.png" in images, f"docs/figures/{fig_id}.md does not show its PNG"
    missing = [im for im in images if not (page.parent / im).resolve().is_file()]
    assert not missing, f"docs/figures/{fig_id}.md shows images that do not exist: {missing}"

    html = (site / "figures" / f"{fig_id}.html").read_text(encoding="utf-8")
    anchors = set(re.findall(r'id="([\w-]+)"', html))
    assert set(FIGURE_SECTIONS.values()) <= anchors, set(FIGURE_SECTIONS.values()) - anchors
    assert f'src="../gallery/{fig_id}.png"' in html
    assert (site / "gallery" / f"{fig_id}.png").is_file()
