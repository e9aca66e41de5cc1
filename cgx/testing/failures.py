"""How a contract check fails: an AssertionError (pytest shows it as a failed test) saying what broke."""
from __future__ import annotations


class ContractError(AssertionError):
    """A component does not keep the cgx plugin contract; the message says which part."""


def check(condition, message: str) -> None:
    if not condition:
        raise ContractError(message)
