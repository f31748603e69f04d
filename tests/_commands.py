"""Checks that an install command we show a user works for how fastbus is installed.

fastbus is not on PyPI: it is installed from its checkout (``python -m pip install -e
'.[bench]'``), and other packages by their own names. Shared by the docs' tests and the
bench's (the test modules import it as ``from _commands import ...``, as ``_children``).
"""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pytest itself depends on tomli there
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

ROOT = Path(__file__).resolve().parent.parent

# "python -m pip install ..." (or a bare "pip install ...") up to where a shell or a
# Markdown code span would end it.
PIP_INSTALL = re.compile(r"(?:[\w./-]+\s+-m\s+)?\bpip\s+install\b[^`\n#&;|)]*")


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def optional_dependencies() -> dict[str, list[str]]:
    """pyproject.toml's extras: ``{extra: [requirement, ...]}``."""
    with open(ROOT / "pyproject.toml", "rb") as file:
        project = tomllib.load(file)["project"]
    return dict(project["optional-dependencies"])


def known_distributions() -> set[str]:
    """The (normalised) names of every distribution an extra of fastbus requires."""
    names = set()
    for requirements in optional_dependencies().values():
        for requirement in requirements:
            match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
            assert match, requirement
            names.add(_normalise(match.group()))
    return names


def install_commands(text: str) -> list[str]:
    """Every pip install command in *text*, as written."""
    return [match.group().strip() for match in PIP_INSTALL.finditer(text)]


def install_problems(command: str) -> list[str]:
    """Why *command* would not work as shown; empty if it would.

    It must run pip as ``python -m pip`` (a bare ``pip`` may belong to another interpreter),
    install fastbus only from the checkout (``-e .`` or ``-e '.[extra,...]'`` with extras
    pyproject.toml has), and name other packages as the extras name them.
    """
    words = shlex.split(command)
    if words[:4] != ["python", "-m", "pip", "install"]:
        return [f"{command!r}: not 'python -m pip install ...'"]
    problems = []
    extras = optional_dependencies()
    known = known_distributions()
    arguments = iter(words[4:])
    for word in arguments:
        if word in ("-e", "--editable"):
            target = next(arguments, "")
            match = re.fullmatch(r"\.(?:\[([\w,-]+)\])?", target)
            if not match:
                problems.append(f"{command!r}: installs {target!r}, not the checkout ('.')")
                continue
            for extra in filter(None, (match.group(1) or "").split(",")):
                if extra not in extras:
                    problems.append(f"{command!r}: pyproject.toml has no extra {extra!r}")
        elif word.startswith("-"):
            continue  # --quiet, --upgrade, ...
        else:
            match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", word)
            name = _normalise(match.group()) if match else word
            if name == "fastbus":
                problems.append(f"{command!r}: fastbus is not on PyPI; install it from the checkout")
            elif name not in known:
                problems.append(f"{command!r}: {word!r} is not a distribution fastbus's extras name")
    if not words[4:]:
        problems.append(f"{command!r}: installs nothing")
    return problems
