"""LossMeter: each term averaged over the steps that reported it, when the terms change between steps (a method's
pretraining phase reports its segmenter's terms alone, then every group's)."""
from __future__ import annotations

import torch

from cgx.train.metrics import LossMeter


class OneProcess:
    def all_reduce(self, t, op):
        return t


def t(x):
    return torch.tensor(float(x))


def test_terms_that_appear_later_are_logged_over_their_own_steps():
    meter = LossMeter(torch.device("cpu"))
    meter.add(1, {"S/A": t(1)})
    meter.add(2, {"S/A": t(3)})
    assert meter.reduce(OneProcess()) == {"S/A": 2.0}
    meter.add(3, {"S/A": t(5)})
    meter.add(4, {"G/x": t(2), "S/A": t(7), "D/y": t(4)})
    meter.add(5, {"G/x": t(4), "S/A": t(9), "D/y": t(8)})
    assert meter.reduce(OneProcess()) == {"S/A": 7.0, "G/x": 3.0, "D/y": 6.0}
    meter.add(6, {"G/x": t(1), "S/A": t(1), "D/y": t(1)})
    assert meter.reduce(OneProcess()) == {"G/x": 1.0, "S/A": 1.0, "D/y": 1.0}


def test_a_term_absent_from_an_interval_is_left_out_and_nan_is_noted():
    meter = LossMeter(torch.device("cpu"))
    meter.add(1, {"a": t(1), "b": t(2)})
    assert meter.reduce(OneProcess()) == {"a": 1.0, "b": 2.0}
    meter.add(2, {"a": t(float("nan"))})
    out = meter.reduce(OneProcess())
    assert list(out) == ["a"] and out["a"] != out["a"]
    assert int(meter.first_bad) == 2 and meter.bad_terms.tolist() == [True, False]
