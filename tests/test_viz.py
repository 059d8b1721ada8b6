"""Graph diagrams: DOT text content, every node once, deep graphs, and real rendered files."""

import re
import shutil

import numpy as np
import pytest

import tinygrad_nlp.functions as F
from tinygrad_nlp import Parameter, Variable, viz


def small_graph():
    x = Variable(np.ones((2, 3), np.float32), name="x")
    W = Parameter(np.ones((3, 4), np.float32), name="W")
    h = F.matmul(x, W)
    h.name = "h"
    y = F.sum(F.tanh(h) + h)  # h used twice
    y.name = "y"
    return y


def node_lines(dot):
    return [l for l in dot.splitlines() if re.match(r"\s+\d+ \[", l)]


def test_dot_text_contains_named_variables_functions_and_edges():
    dot = viz.get_dot_graph(small_graph())
    assert dot.startswith("digraph g {") and dot.rstrip().endswith("}")
    assert "rankdir=TB" in dot
    for name in ("MatMul", "Tanh", "Add", "Sum"):
        assert f'label="{name}"' in dot
    assert 'label="x\\n(2, 3) float32"' in dot
    assert 'label="W\\n(3, 4) float32"' in dot
    assert "->" in dot


def test_each_node_appears_once_even_when_reused():
    dot = viz.get_dot_graph(small_graph())
    labels = [re.search(r'label="([^"]*)"', l).group(1) for l in node_lines(dot)]
    assert labels.count("h\\n(2, 4) float32") == 1
    assert labels.count("MatMul") == 1
    # x, W, h, tanh(h), add, y (6 variables) + MatMul, Tanh, Add, Sum (4 functions)
    assert len(labels) == 10
    edges = re.findall(r"(\d+) -> (\d+);", dot)
    assert len(edges) == len(set(edges))


def test_parameters_look_distinct_and_verbose_off_hides_shapes():
    dot = viz.get_dot_graph(small_graph(), verbose=False)
    w_line = next(l for l in node_lines(dot) if 'label="W"' in l)
    x_line = next(l for l in node_lines(dot) if 'label="x"' in l)
    assert "peripheries=2" in w_line and "peripheries" not in x_line
    assert "(2, 3)" not in dot
    fn_line = next(l for l in node_lines(dot) if 'label="MatMul"' in l)
    assert "shape=box" in fn_line and "shape=ellipse" in x_line


def test_rankdir_option_and_validation():
    assert "rankdir=LR" in viz.get_dot_graph(small_graph(), rankdir="LR")
    with pytest.raises(ValueError, match="rankdir"):
        viz.get_dot_graph(small_graph(), rankdir="XY")


def test_constants_shown_or_hidden():
    x = Variable(np.ones(3), name="x")
    y = x * 2.5
    assert 'label="2.5"' in viz.get_dot_graph(y)
    assert "2.5" not in viz.get_dot_graph(y, show_constants=False)


def test_names_are_escaped():
    x = Variable(np.ones(1), name='say "hi"')
    dot = viz.get_dot_graph(F.exp(x))
    assert 'say \\"hi\\"' in dot


def test_graph_of_10000_nodes_renders_to_text():
    x = Variable(np.array(1.0), name="x")
    y = x
    for _ in range(5000):
        y = F.sin(y)
    dot = viz.get_dot_graph(y)
    assert len(node_lines(dot)) == 10001  # 5001 variables + 5000 functions


def test_collect_graph_lists_nodes_and_edges():
    g = viz.collect_graph(small_graph())
    assert len(g.functions) == 4 and len(g.variables) == 6
    assert all(0 <= a < len(g.nodes) and 0 <= b < len(g.nodes) for a, b in g.edges)


needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz 'dot' is not installed")


@needs_dot
@pytest.mark.parametrize("ext, magic", [("svg", b"<svg"), ("png", b"\x89PNG"), ("pdf", b"%PDF")])
def test_plot_dot_graph_renders_real_files(tmp_path, ext, magic):
    out = tmp_path / f"graph.{ext}"
    src = viz.plot_dot_graph(small_graph(), to_file=str(out))
    data = out.read_bytes()
    assert magic in data[:400]
    assert hasattr(src, "_repr_mimebundle_") or hasattr(src, "_repr_svg_")


def test_plot_dot_graph_writes_dot_text(tmp_path):
    out = tmp_path / "g.dot"
    viz.plot_dot_graph(small_graph(), to_file=out)
    assert out.read_text().startswith("digraph g {")


def test_plot_dot_graph_rejects_unknown_extension(tmp_path):
    with pytest.raises(ValueError, match=r"\.svg"):
        viz.plot_dot_graph(small_graph(), to_file=tmp_path / "g.jpeg")


def test_missing_graphviz_writes_dot_and_explains(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    out = tmp_path / "graph.svg"
    with pytest.raises(viz.GraphvizNotFoundError, match="apt-get install graphviz"):
        viz.plot_dot_graph(small_graph(), to_file=out)
    assert (tmp_path / "graph.dot").read_text().startswith("digraph")
    assert not out.exists()


# ----- attention heatmaps -----

def test_plot_attention_returns_a_figure_and_saves_only_when_asked(tmp_path, monkeypatch):
    matplotlib = pytest.importorskip("matplotlib")
    monkeypatch.chdir(tmp_path)
    backend = matplotlib.get_backend()
    w = np.array([[0.7, 0.2, 0.1], [0.0, 0.5, 0.5]])
    fig = viz.plot_attention(w, "ab ", ["1", "2"])
    assert list(tmp_path.iterdir()) == []
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "\u2423"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["1", "2"]
    np.testing.assert_array_equal(ax.images[0].get_array(), w)
    for ext, magic in (("png", b"\x89PNG"), ("svg", b"<svg"), ("pdf", b"%PDF")):
        viz.plot_attention(w[None], "ab ", "12", path=tmp_path / f"a.{ext}", title="t")
        assert magic in (tmp_path / f"a.{ext}").read_bytes()[:400]
    assert matplotlib.get_backend() == backend
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pdf", "a.png", "a.svg"]


def test_plot_attention_rejects_mismatched_labels_and_formats(tmp_path):
    pytest.importorskip("matplotlib")
    w = np.ones((2, 3)) / 3
    with pytest.raises(ValueError, match=r"need 3 source and 2 target labels, got 2 and 2"):
        viz.plot_attention(w, "ab", "12")
    with pytest.raises(ValueError, match=r"must be \(Td, Te\)"):
        viz.plot_attention(np.ones(3), "abc", "1")
    with pytest.raises(ValueError, match=r"use a .png, .svg or .pdf name"):
        viz.plot_attention(w, "abc", "12", path=tmp_path / "a.jpeg")
    assert not (tmp_path / "a.jpeg").exists()
