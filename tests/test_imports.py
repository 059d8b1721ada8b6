"""The package's dependencies point one way: no module imports one that (directly or through
others) imports it back, lazy imports inside functions included.

One kind of import is not a dependency and is not counted: a module-level ``__getattr__``
(PEP 562) that only re-exports names of a higher module under this one's name, as
``tinygrad_nlp.models`` offers the sequence-to-sequence models; nothing in the module uses them."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "tinygrad_nlp"

# Lower layers first; a module may import only from its own layer or those before it.
LAYERS = [
    {"_threads", "errors", "io", "backend", "kernels"},
    {"sparse", "text"},
    {"core"},
    {"functions", "gradcheck", "optimizers", "viz", "vectors"},
    {"layers"},
    {"models"},
    {"train"},
    {"cli"},
]


def _component(module):
    """``tinygrad_nlp.functions.embedding`` -> ``functions``; None outside the package."""
    parts = module.split(".")
    if parts[0] != "tinygrad_nlp" or len(parts) < 2:
        return None
    return parts[1]


def import_graph():
    """{component: {components it imports}} over every module of the package, the package's
    own ``__init__`` excepted (it gathers the public names)."""
    graph = {}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        if rel.parts == ("tinygrad_nlp", "__init__"):
            continue
        me = rel.parts[1]
        deps = graph.setdefault(me, set())
        tree = ast.parse(path.read_text(encoding="utf-8"))
        aliases = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "__getattr__"]
        skipped = {id(n) for hook in aliases for n in ast.walk(hook)}
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for name in names:
                other = _component(name)
                if other and other != me and ((PACKAGE / other).is_dir() or (PACKAGE / f"{other}.py").exists()):
                    deps.add(other)
    return graph


def _find_cycle(graph):
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_import_graph_has_no_cycle():
    cycle = _find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_core_layers_import_only_downwards():
    rank = {name: i for i, layer in enumerate(LAYERS) for name in layer}
    graph = import_graph()
    upward = sorted(
        f"{module} imports {dep}"
        for module, deps in graph.items() if module in rank
        for dep in deps if dep in rank and rank[dep] > rank[module]
    )
    assert not upward, "; ".join(upward)


def test_the_checker_sees_a_cycle():
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": set()}) is None
