"""The built-in recipes, by name: ``demo`` is ``recipes/demo.yaml``.

    python -m cgx.run cyclegan_256 data.root=datasets/horse2zebra
    cgx recipes                # the names, each with its first comment's sentence
    cgx recipes show demo      # the file, to copy and edit

``recipes/`` in the checkout is the one copy of these files; a wheel carries it as ``cgx/_recipes``
(pyproject.toml maps the folder). A recipe argument that names an existing file is that file, always
(a user's ``demo.yaml`` in the working directory wins over the built-in ``demo``); only a name
that is no file is looked up here.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError
from .extras import checkout

SUFFIX = ".yaml"
PACKAGE_DIR = Path(__file__).resolve().parent


def folder() -> Path | None:
    """Where the built-in recipes are: inside the installed package (a wheel), else the checkout's
    ``recipes/`` beside the package (an editable install, or the checkout on the path)."""
    installed = PACKAGE_DIR / "_recipes"
    if installed.is_dir():
        return installed
    root = checkout()
    return root / "recipes" if root is not None and (root / "recipes").is_dir() else None


def names() -> list[str]:
    d = folder()
    return sorted(p.name[: -len(SUFFIX)] for p in d.glob(f"*{SUFFIX}")) if d is not None else []


@dataclass(frozen=True)
class Recipe:
    name: str
    path: Path

    @property
    def description(self) -> str:
        return describe(self.path.read_text(encoding="utf-8"))


def builtin(name: str) -> Recipe | None:
    """The built-in recipe ``name`` (``demo`` or ``demo.yaml``), or None."""
    bare = name[: -len(SUFFIX)] if name.endswith(SUFFIX) else name
    if bare not in names():
        return None
    return Recipe(bare, folder() / f"{bare}{SUFFIX}")


def get(name: str) -> Recipe:
    """The built-in recipe ``name``, or a ConfigError listing the names."""
    found = builtin(name)
    if found is None:
        raise ConfigError(f"no built-in recipe {name!r}; built-in recipes: {', '.join(names()) or 'none found'}")
    return found


def all_recipes() -> list[Recipe]:
    return [Recipe(n, folder() / f"{n}{SUFFIX}") for n in names()]


def resolve(recipe: str | Path) -> Path:
    """A recipe argument as a file: an existing file as given; else a built-in recipe's name; else a
    ConfigError naming both what was looked for and the built-in names."""
    path = Path(recipe)
    if path.is_file():
        return path
    text = str(recipe)
    found = builtin(text) if "/" not in text and "\\" not in text else None
    if found is not None:  # (a folder named like a recipe is no recipe: the name still works beside it)
        return found.path
    if path.exists():
        return path  # not a file: load_config says so
    raise ConfigError(f"recipe file not found: {path} (nor a built-in recipe of that name: "
                      f"{', '.join(names()) or 'none found'}; cgx recipes describes them)")


def describe(text: str, limit: int = 110) -> str:
    """The recipe's first sentence: its leading comment up to the first '. ' or ': ' (a command line
    in the comment ends it), in one line of at most ``limit`` characters."""
    lines = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        body = line[1:]
        if body.startswith("  ") or not body.strip():  # an indented command, or a blank comment line
            break
        lines.append(body.strip())
    words = " ".join(lines)
    end = re.search(r"(?<!\bal)[.:](\s|$)", words)  # "Zhu et al. 2017" goes on
    sentence = words[: end.start()] if end else words
    return sentence if len(sentence) <= limit else sentence[: limit - 3].rstrip() + "..."


def table() -> str:
    """``cgx recipes``: one line per built-in recipe, its name and its first sentence."""
    found = all_recipes()
    if not found:
        return "no built-in recipes found (cgx is installed without its recipes/ folder)"
    width = max(len(r.name) for r in found)
    lines = [f"{r.name:<{width}}  {r.description}" for r in found]
    lines.append(f"\n{len(found)} built-in recipes in {folder()}; train one by name (python -m cgx.run NAME "
                 f"key=value ...), or start your own from one: cgx recipes show NAME > my.yaml")
    return "\n".join(lines)
