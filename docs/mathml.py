"""mkdocs hook: typeset the pages' TeX as MathML when the site is built.

``pymdownx.arithmatex`` (generic mode) wraps each formula in ``<span class="arithmatex">\\(...\\)``
or ``<div class="arithmatex">\\[...\\]``; this hook replaces the TeX with MathML from
``latex2mathml``, which every current browser draws natively. The site then needs no MathJax,
no script and no network: formulas show offline exactly as online.
"""

from __future__ import annotations

import html
import re

from latex2mathml.converter import convert

_MATH = re.compile(
    r'<(?P<tag>span|div) class="arithmatex">\s*(?:\\\((?P<inline>.*?)\\\)|\\\[(?P<block>.*?)\\\])\s*</(?P=tag)>',
    re.S,
)


def tex_to_mathml(tex, display):
    """MathML markup for one TeX formula (``display``: a block of its own, else inline)."""
    return convert(tex.strip(), display="block" if display else "inline")


def _replace(match):
    block = match.group("block")
    tex = html.unescape(block if block is not None else match.group("inline"))
    mathml = tex_to_mathml(tex, display=block is not None)
    tag = match.group("tag")
    return f'<{tag} class="arithmatex">{mathml}</{tag}>'


def on_page_content(html_text, page, config, files):
    """Replace every arithmatex formula of a page with MathML."""
    return _MATH.sub(_replace, html_text)
