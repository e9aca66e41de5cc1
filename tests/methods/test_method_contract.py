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
    """The method template with a ``load_state_dict`` that restores nothing: its image history is saved
    but not loaded, so a resumed run answers differently and the check says so."""
    from cgx.plugins import scaffold
    from cgx.testing import ContractError

    code = scaffold.render("method", "forgetful")["cgx_forgetful.py"]
    restore = '        self.history.load_state_dict(state["history"])\n'
    assert restore in code
    module = tmp_path / "forgetful.py"
    module.write_text(code.replace(restore, "        pass\n"))
    with pytest.raises(ContractError, match="not resumed exactly"):
        check_method("forgetful", tmp_path / "check", plugins=[str(module)])
