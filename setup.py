"""Package discovery (everything else is in pyproject.toml): every package under cgx/, the built-in
plugins in plugins/ installed as ``cgx_plugins`` (never a top-level ``plugins``; the example packages
in plugins/examples are packages of their own), and the recipes folder as ``cgx._recipes``."""
from setuptools import find_packages, setup

setup(packages=[
    *find_packages(include=["cgx", "cgx.*"]),
    "cgx_plugins",
    *(f"cgx_plugins.{p}" for p in find_packages("plugins", exclude=["examples", "examples.*"])),
    "cgx._recipes",
])
