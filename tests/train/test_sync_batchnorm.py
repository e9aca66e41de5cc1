"""model.sync_batchnorm: converted in one place (cgx.train.wiring), only under DDP with more than one rank,
on CUDA; a one-line error names the key otherwise."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from cgx.config import config_from_dict
from cgx.errors import ConfigError
from cgx.train.wiring import sync_batchnorm


def group():
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Sequential(nn.BatchNorm2d(4)))


def strategy(name="ddp", world=2, device="cuda"):
    return SimpleNamespace(name=name, world_size=world, device=torch.device(device))


def test_converted_under_ddp_with_ranks():
    cfg = config_from_dict({"model": {"sync_batchnorm": True}})
    net = sync_batchnorm(cfg, strategy(), group())
    assert sum(isinstance(m, nn.SyncBatchNorm) for m in net.modules()) == 2
    assert not any(type(m) is nn.BatchNorm2d for m in net.modules())
    one = sync_batchnorm(cfg, strategy(world=1), group())  # one process: plain batch norm is the same thing
    assert not any(isinstance(m, nn.SyncBatchNorm) for m in one.modules())


@pytest.mark.parametrize("name, device, message", [("deepspeed", "cuda", "needs distributed.strategy=ddp"),
                                                   ("ddp", "cpu", "needs CUDA devices")])
def test_refused_where_it_cannot_work(name, device, message):
    cfg = config_from_dict({"model": {"sync_batchnorm": True}})
    with pytest.raises(ConfigError, match=f"model.sync_batchnorm=true {message}"):
        sync_batchnorm(cfg, strategy(name, device=device), group())
