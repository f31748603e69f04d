"""The docs tell the truth about the commands and names they show.

Install commands must work for how fastbus is installed (from its checkout; it is not on
PyPI), the bench command lines must be ones the bench accepts, files and ``python -m`` modules
they name must exist, and the API page must document the public names (``fastbus.Bus.publish``),
never a core's private class, on either core.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from _commands import install_commands, install_problems

import fastbus
import fastbus.plugins
from fastbus.bench import _cli

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md")) + [ROOT / "README.md"]


def _text(page: Path) -> str:
    return page.read_text(encoding="utf-8")


def test_there_are_pages_and_install_commands() -> None:
    # The checks below pass vacuously if the pages or the commands cannot be found.
    assert {"api.md", "index.md", "migration.md", "performance.md", "README.md"} <= {p.name for p in PAGES}
    assert len([c for page in PAGES for c in install_commands(_text(page))]) >= 4


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_install_commands_work_as_shown(page: Path) -> None:
    problems = [problem for command in install_commands(_text(page)) for problem in install_problems(command)]
    assert problems == []


def _bench_command_lines(text: str) -> list[list[str]]:
    """The arguments of every ``python -m fastbus.bench`` / ``fastbus-bench`` command shown."""
    found = []
    for match in re.finditer(r"(?:python -m fastbus\.bench|\bfastbus-bench)\b([^`\n#&;|]*)", text):
        found.append(shlex.split(match.group(1)))
    return found


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_bench_command_lines_are_accepted(page: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for argv in _bench_command_lines(_text(page)):
        try:
            _cli._parser().parse_args(argv)
        except SystemExit as exc:  # --help exits with 0
            if exc.code != 0:
                pytest.fail(f"{page.name}: the bench refuses {argv}: {capsys.readouterr().err}")


def test_bench_commands_are_found() -> None:
    lines = _bench_command_lines(_text(DOCS / "performance.md"))
    assert ["--quick"] in lines and any("--contenders" in argv for argv in lines)


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_modules_run_with_python_m_exist(page: Path) -> None:
    for name in re.findall(r"python -m (fastbus(?:\.\w+)*)", _text(page)):
        spec = importlib.util.find_spec(name)
        assert spec is not None, f"{page.name}: python -m {name}: no such module"
        if spec.submodule_search_locations is not None:  # a package runs its __main__
            assert importlib.util.find_spec(f"{name}.__main__"), f"{page.name}: python -m {name}: no __main__"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_files_named_exist(page: Path) -> None:
    paths = re.findall(r"(?<![\w/.])((?:benchmarks|examples|docs|fastbus|tests|\.ci)/[\w./-]*\w)", _text(page))
    import fastbus

    # fastbus/... is looked for where fastbus was imported from: the installed gates test an
    # installed package with the source tree's copy of the package removed.
    package = Path(fastbus.__file__).resolve().parent

    def exists(path: str) -> bool:
        if path.startswith("fastbus/"):
            return (package / path[len("fastbus/") :]).exists()
        return (ROOT / path).exists()

    missing = [path for path in paths if not path.startswith("docs/_build") and not exists(path)]
    assert missing == []


def _shown_runs(command: str) -> list[Any]:
    """``(page, environment, output lines)`` for each console block line ``$ [VAR=x] command``."""
    runs: list[Any] = []
    for page in PAGES:
        for block in re.findall(r"```console\n(.*?)```", _text(page), re.DOTALL):
            lines = block.splitlines()
            for i, line in enumerate(lines):
                match = re.fullmatch(r"\$ ((?:\w+=\S+ )*)" + re.escape(command), line.strip())
                if match:
                    output = []
                    for following in lines[i + 1 :]:
                        if following.startswith("$"):
                            break
                        output.append(following)
                    environment = dict(word.split("=", 1) for word in match.group(1).split())
                    runs.append(pytest.param(page, environment, output, id=f"{page.name}-{len(runs)}"))
    return runs


def _without_versions(lines: list[str]) -> list[str]:
    return [re.sub(r"^fastbus \S+ on Python \S+$", "fastbus VERSION on Python VERSION", line) for line in lines]


@pytest.mark.parametrize("page, environment, shown", _shown_runs("python -m fastbus"))
def test_python_m_fastbus_prints_what_the_docs_show(page: Path, environment: dict[str, str], shown: list[str]) -> None:
    if any("core: compiled" in line for line in shown):
        pytest.importorskip("fastbus._core_c", reason="this output needs the compiled core built")
    env = dict(os.environ, **environment)
    if "FASTBUS_NO_EXTENSIONS" not in environment:
        env.pop("FASTBUS_NO_EXTENSIONS", None)
    home = str(Path(fastbus.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (home, env.get("PYTHONPATH"))))
    done = subprocess.run([sys.executable, "-m", "fastbus"], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert _without_versions(done.stdout.splitlines()) == _without_versions(shown)


def test_python_m_fastbus_output_is_shown() -> None:
    assert len(_shown_runs("python -m fastbus")) >= 2


# -- the API page -----------------------------------------------------------------------------

_DIRECTIVE = re.compile(r"^(?P<indent> *)\.\. (?P<kind>auto\w+|data|attribute|module)::\s*(?P<target>\S+)", re.MULTILINE)


def _documented() -> list[str]:
    """The dotted name of everything docs/api.md documents by a directive, nested ones resolved."""
    names: list[str] = []
    current_class = ""
    module = ""
    for match in _DIRECTIVE.finditer(_text(DOCS / "api.md")):
        kind, target = match["kind"], match["target"].split("(")[0]  # "Bus()": a given signature
        nested = len(match["indent"]) > 0
        if kind == "module":
            module = target
            continue
        if nested:
            name = f"{current_class}.{target}"
        elif "." in target:
            name = target
        else:
            name = f"{module}.{target}"
        if kind in ("autoclass", "autoexception"):
            current_class = name
        names.append(name)
    return names


def _resolve(name: str) -> Any:
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attribute in parts[cut:]:
            obj = getattr(obj, attribute)
        return obj
    raise ImportError(name)


def _private(name: str) -> bool:
    return any(part.startswith("_") and not (part.startswith("__") and part.endswith("__")) for part in name.split("."))


def test_api_page_documents_public_names_that_exist() -> None:
    names = _documented()
    assert [name for name in names if _private(name)] == []
    for name in names:
        if name.startswith("fastbus.Bus."):  # instance attributes set in __init__ included
            assert hasattr(fastbus.Bus(), name.rsplit(".", 1)[1]), name
        else:
            _resolve(name)


def test_api_page_documents_the_whole_public_api() -> None:
    documented = set(_documented())
    public = {f"fastbus.{name}" for name in fastbus.__all__}
    public |= {f"fastbus.Bus.{name}" for name in dir(fastbus.Bus()) if not name.startswith("_")}
    # The registry methods must be listed under Bus, where a user finds them.
    assert {"fastbus.Bus.subscribe", "fastbus.Bus.unsubscribe", "fastbus.Bus.publish"} <= documented
    assert public - documented == set()
    text = _text(DOCS / "api.md")
    assert ".. automodule:: fastbus.plugins" in text and ".. automodule:: fastbus.run" in text


# -- the rendered API page, on each core ------------------------------------------------------

_BUILD = (
    "import sys, fastbus\n"
    "want = sys.argv[1] == 'compiled'\n"
    "assert fastbus.COMPILED is want, f'wanted the {sys.argv[1]} core, got COMPILED={fastbus.COMPILED}'\n"
    "from sphinx.cmd.build import main\n"
    "sys.exit(main(sys.argv[2:]))\n"
)


@pytest.fixture(scope="module", params=[pytest.param("compiled", marks=pytest.mark.c_extension), "pure"])
def api_page(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """``(core, html)``: docs/api.md as Sphinx renders it with fastbus on that core."""
    pytest.importorskip("sphinx", reason="the docs extra is not installed (python -m pip install -e '.[docs]')")
    pytest.importorskip("myst_parser", reason="the docs extra is not installed (python -m pip install -e '.[docs]')")
    core = request.param
    out = tmp_path_factory.mktemp(f"docs-{core}")
    env = dict(os.environ)
    env.pop("FASTBUS_NO_EXTENSIONS", None)
    if core == "pure":
        env["FASTBUS_NO_EXTENSIONS"] = "1"
    # The fastbus this process tests, not whatever else is installed.
    home = str(Path(fastbus.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (home, env.get("PYTHONPATH"))))
    done = subprocess.run(
        [sys.executable, "-c", _BUILD, core, "-W", "-q", "-E", "-b", "html", str(DOCS), str(out)],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stderr
    return core, (out / "api.html").read_text(encoding="utf-8")


def test_rendered_api_page_names_public_objects(api_page: tuple[str, str]) -> None:
    _, html = api_page
    ids = set(re.findall(r'<dt class="sig sig-object py" id="([^"]+)"', html))
    expected = {f"fastbus.{name}" for name in fastbus.__all__}
    expected |= {f"fastbus.Bus.{name}" for name in dir(fastbus.Bus()) if not name.startswith("_")}
    expected |= {f"fastbus.plugins.{name}" for name in fastbus.plugins.__all__ if name != "SimplePlugin"}
    expected.add("fastbus.run.main")
    assert expected - ids == set()
    assert sorted(name for name in ids if _private(name)) == []
    signatures = re.findall(r'<dt class="sig sig-object py"[^>]*>(.*?)</dt>', html, re.DOTALL)
    assert [s for s in signatures if re.search(r"_core_(?:c|py)|CoreBus|\(self\b", s)] == []


@pytest.fixture
def page_text(api_page: tuple[str, str]) -> str:
    _, html = api_page
    return re.sub(r"<[^>]+>", " ", html)


def test_rendered_api_page_text_names_no_private_core(page_text: str) -> None:
    assert re.findall(r"\S*(?:_core_(?:c|py)|CoreBus)\S*", page_text) == []


@pytest.mark.parametrize("name", ["README.md", "docs/idioms.md"])
def test_python_examples_run(core_env: dict[str, str], name: str) -> None:
    """A page's Python blocks, run in order as one program, on the core under test.

    Blocks that talk to a Redis server (``redis://``) are left to the bridge's own tests.
    """
    blocks = re.findall(r"```python\n(.*?)```", _text(ROOT / name), re.S)
    blocks = [block for block in blocks if "redis://" not in block]
    assert len(blocks) >= 2
    done = subprocess.run(
        [sys.executable, "-c", "\n".join(blocks)], env=core_env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
