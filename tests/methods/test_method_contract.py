"""The built-in methods through the public method check (``cgx.testing.check_method``), as an outside
method package checks its own: 4 tiny steps, exact resume from step 2, translate through the run.
One unpaired two-direction method and one paired one-direction method; and a method the check refuses."""
from __future__ import annotations

import pytest

from cgx.testing import check_method

pytestmark = pytest.mark.slow  # trains for real


def test_cyclegan_keeps_the_method_contract(tmp_path):
    check_method({"name": "cyclegan", "identity_weight": 0.5}, tmp_path)


def test_pix2pix_keeps_the_method_contract(tmp_path):
    # batch norm and dropout, the authors' pix2pix: dropout draws from the global RNG that resume restores
    check_method({"name": "pix2pix", "direction": "BtoA"}, tmp_path,
                 recipe={"model": {"generator": {"name": "unet", "ngf": 4, "num_downs": 5, "norm": "batch",
                                                 "dropout": True}}})


def test_the_method_check_catches_a_step_state_that_is_not_restored(tmp_path):
    """The method template with a state of its own that it saves but does not load: a counter of its calls that
    weighs its loss. (Image buffers built by ``make.buffer()`` are restored by the engine as well, for runs
    resumed on another world size, so a forgotten history no longer shows.) A resumed run answers differently
    and the check says so."""
    from cgx.plugins import scaffold
    from cgx.testing import ContractError

    code = scaffold.render("method", "forgetful")["cgx_forgetful.py"]
    edits = [
        ("make.buffer()\n", "make.buffer()\n        self.calls = 0\n"),
        ("        with frozen(self.D), self.autocast():", "        self.calls += 1\n        with frozen(self.D), self.autocast():"),
        ("self.weight * self.l1(", "self.weight * (1 + self.calls % 3) * self.l1("),
        ('return {"history": self.history.state_dict()}', 'return {"history": self.history.state_dict(), "calls": self.calls}'),
    ]
    for old, new in edits:
        assert code.count(old) == 1, old
        code = code.replace(old, new)
    module = tmp_path / "forgetful.py"
    module.write_text(code)
    with pytest.raises(ContractError, match="not resumed exactly"):
        check_method("forgetful", tmp_path / "check", plugins=[str(module)])
