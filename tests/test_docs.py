"""The documentation is tested like code.

* Every ```python block of docs/**/*.md and README.md runs: the blocks of one page run in order,
  in one namespace, in a fresh temporary working directory (so files a page writes never land in
  the repository). A block preceded by ``<!-- docs-test: skip REASON -->`` is not run; one
  preceded by ``<!-- docs-test: needs ptb -->`` needs the Penn Treebank files, which the test
  provides through ``$TINYGRAD_NLP_PTB_DIR`` (the page is skipped when they are absent).
* ``mkdocs build --strict`` succeeds with zero warnings (API pages from the docstrings included).
* ``docs/make_images.py`` runs and renders every image a page references, and the committed
  copies in docs/images/ exist and stay small.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
IMAGES = DOCS / "images"

MARKER = re.compile(r"^\s*<!--\s*docs-test:\s*(?P<what>[^>]*?)\s*-->\s*$")
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<ticks>`{3,}|~{3,})\s*(?P<info>[^`]*)$")
IMAGE_REF = re.compile(r"images/([\w.-]+\.(?:svg|png))")


def doc_pages():
    pages = sorted(DOCS.rglob("*.md"))
    readme = REPO / "README.md"
    if readme.exists():
        pages.append(readme)
    return pages


def code_blocks(path):
    """``[(first_line, code, marker), ...]`` for the ```python blocks of a Markdown file.

    ``first_line`` is the 1-based line of the block's first code line; ``marker`` is the text of
    a ``<!-- docs-test: ... -->`` comment on the line just before the fence (else None).
    """
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    blocks = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, ticks = m.group("indent"), m.group("ticks")
        lang = (m.group("info").split() or [""])[0].lstrip("{.").lower()
        start = i + 1
        j = start
        while j < len(lines) and not (lines[j].startswith(indent) and lines[j].strip().startswith(ticks)
                                      and lines[j].strip().strip(ticks[0]) == ""):
            j += 1
        if lang in ("python", "py"):
            body = "\n".join(line[len(indent):] if line.startswith(indent) else line for line in lines[start:j])
            k = i - 1
            while k >= 0 and not lines[k].strip():
                k -= 1
            marker = MARKER.match(lines[k]) if k >= 0 else None
            blocks.append((start + 1, textwrap.dedent(body), marker.group("what") if marker else None))
        i = j + 1
    return blocks


PAGES = [p for p in doc_pages() if code_blocks(p)]


def test_docs_have_python_blocks():
    """Collection sanity: the parser finds the pages' examples (a broken parser would pass vacuously)."""
    names = {p.relative_to(REPO).as_posix() for p in PAGES}
    for page in ("docs/getting-started.md", "docs/autograd.md", "docs/nlp-functions.md", "docs/cbow.md",
                 "docs/training.md", "docs/performance.md", "docs/design.md"):
        assert page in names, f"{page} has no ```python block (or the block parser broke)"
    assert sum(len(code_blocks(p)) for p in PAGES) >= 40


def test_markers_are_known():
    for page in doc_pages():
        for line_no, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
            m = MARKER.match(line)
            if m:
                what = m.group("what")
                assert what == "needs ptb" or what.startswith("skip "), (
                    f"{page.name}:{line_no}: unknown marker {what!r} (use 'needs ptb' or 'skip REASON')")


@pytest.mark.parametrize("page", PAGES, ids=[p.relative_to(REPO).as_posix() for p in PAGES])
def test_page_code_runs(page, tmp_path, monkeypatch, request):
    blocks = code_blocks(page)
    if any(marker == "needs ptb" for _, _, marker in blocks):
        ptb = request.getfixturevalue("ptb_dir")  # skips the page when the files are absent
        monkeypatch.setenv("TINYGRAD_NLP_PTB_DIR", str(ptb))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__docs__"}
    rel = page.relative_to(REPO).as_posix()
    for first_line, code, marker in blocks:
        if marker and marker.startswith("skip "):
            continue
        # Pad with newlines so tracebacks point at the Markdown file's own line numbers.
        compiled = compile("\n" * (first_line - 1) + code, str(page), "exec")
        try:
            exec(compiled, namespace)
        except Exception as err:
            raise AssertionError(f"{rel}: the block starting at line {first_line} failed: "
                                 f"{type(err).__name__}: {err}") from err
    try:
        import matplotlib.pyplot as plt

        plt.close("all")
    except ImportError:
        pass


def referenced_images():
    names = set()
    for page in doc_pages():
        names.update(IMAGE_REF.findall(page.read_text(encoding="utf-8")))
    return names


def test_committed_images_exist_and_are_small():
    names = referenced_images()
    assert names, "no page references an image"
    missing = sorted(n for n in names if not (IMAGES / n).is_file())
    assert not missing, f"docs reference images not in docs/images (run python docs/make_images.py): {missing}"
    sizes = {p.name: p.stat().st_size for p in IMAGES.iterdir()}
    assert all(s < 200_000 for s in sizes.values()), sizes
    assert sum(sizes.values()) < 1_000_000, sizes


def test_make_images_renders_every_referenced_image(tmp_path):
    out = tmp_path / "images"
    env = dict(os.environ, MPLBACKEND="Agg")
    proc = subprocess.run([sys.executable, str(DOCS / "make_images.py"), "--out", str(out)],
                          capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    produced = {p.name for p in out.iterdir()}
    missing = sorted(referenced_images() - produced)
    assert not missing, f"make_images.py does not produce {missing}"
    for name in produced:
        assert (out / name).stat().st_size > 500, name
        if name.endswith(".svg"):
            assert (out / name).read_text(encoding="utf-8").lstrip().startswith("<?xml"), name


def test_mkdocs_build_strict(tmp_path):
    if os.environ.get("CI") is None:
        pytest.importorskip("mkdocs", reason='the docs tools are not installed: pip install -e ".[docs]"')
        pytest.importorskip("mkdocstrings")
        pytest.importorskip("material")
    site = tmp_path / "site"
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(REPO / "mkdocs.yml"),
                           "-d", str(site)], capture_output=True, text=True, timeout=180, env=env, cwd=tmp_path)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    warnings = [line for line in output.splitlines() if "WARNING" in line]
    assert not warnings, "\n".join(warnings)
    # The API reference really was generated from the docstrings.
    api = (site / "api" / "functions" / "index.html").read_text(encoding="utf-8")
    assert "embedding_dot" in api and "W_out" in api
    assert (site / "images" / "model_cbow.svg").is_file()
    assert not (site / "make_images.py").exists() and not (site / "mathml.py").exists()
    pages = {p.relative_to(site).as_posix(): p.read_text(encoding="utf-8") for p in site.rglob("*.html")}
    for name, page in pages.items():
        # Everything the pages load is served with the site: no script or style from a CDN.
        assert not re.search(r"<(?:script|link)[^>]+(?:src|href)=\"https?://", page), name
        assert "mathjax" not in page.lower(), name
        text = re.sub(r"<(pre|code)\b.*?</\1>", "", page, flags=re.S)
        assert "\\(" not in text and "\\[" not in text, f"{name}: TeX left untypeset"
        assert not re.search(r":(?:class|func|meth|mod|attr|data|exc):`", text), f"{name}: a Sphinx role"
    maths = pages["nlp-functions/index.html"]
    assert maths.count("<math") >= 20 and 'display="block"' in maths and "<mfrac>" in maths
    api = pages["api/vectors/index.html"]
    assert re.search(r'<a[^>]+href="[^"]*#tinygrad_nlp\.vectors\.WordVectors\.analogy"', api)


# ----- checks that need no build -----

SPHINX_ROLE = re.compile(r":(?:class|func|meth|mod|attr|data|exc|obj):`")


def test_docstrings_use_cross_references_not_sphinx_roles():
    """mkdocstrings shows Sphinx roles literally: write [`name`][target] (or plain `code`)."""
    offenders = [f"{p.relative_to(REPO)}:{i}" for p in sorted((REPO / "tinygrad_nlp").rglob("*.py"))
                 for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if SPHINX_ROLE.search(line)]
    assert offenders == []


def test_code_lines_fit_the_page():
    """The site cuts code lines past 88 columns; the pages' code blocks stay within them."""
    long_lines = []
    for page in sorted(DOCS.rglob("*.md")):
        inside = False
        for i, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
            if FENCE.match(line):
                inside = not inside
            elif inside and len(line) > 88:
                long_lines.append(f"{page.relative_to(REPO)}:{i} ({len(line)})")
    assert long_lines == []


def test_no_words_only_the_project_history_explains():
    """Readers never saw the study notes this project started from: say "the book" instead."""
    pattern = re.compile(r"seed 00\d|study notes|the seed\b|seed's|seed document", re.I)
    offenders = []
    for path in [*DOCS.rglob("*.md"), REPO / "README.md", *(REPO / "tinygrad_nlp").rglob("*.py"),
                 *(REPO / "examples").rglob("*.py"), *(REPO / "tests").rglob("*.py")]:
        if path.name == "test_docs.py":
            continue
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if pattern.search(line):
                offenders.append(f"{path.relative_to(REPO)}:{i}")
    assert offenders == []
