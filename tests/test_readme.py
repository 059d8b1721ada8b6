"""The README's two commands: exactly two, and CI runs exactly the README's test command."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def two_commands():
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Two commands", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.*?)\n```", section, flags=re.S)


def test_readme_gives_exactly_two_commands():
    commands = two_commands()
    assert len(commands) == 2
    demo, tests = commands
    assert "tinygrad-nlp demo" in demo and "\n" not in demo
    assert "pytest" in tests and "\n" not in tests


def test_ci_runs_the_readme_test_command():
    ci_lines = [l.strip() for l in (REPO / ".ci" / "run").read_text().splitlines() if l.strip() and not l.startswith("#")]
    assert two_commands()[1] in ci_lines


def test_readme_image_exists():
    readme = (REPO / "README.md").read_text()
    for path in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", readme):
        assert (REPO / path).is_file(), path


def test_ci_installs_no_system_package():
    """CI checks the README's promise that pip alone is enough, diagrams included."""
    ci = (REPO / ".ci" / "run").read_text()
    code = "\n".join(l for l in ci.splitlines() if not l.lstrip().startswith("#"))
    assert "apt-get" not in code and "brew" not in code
