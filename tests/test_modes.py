"""genlab.modes.eval_mode: eval mode and no grad for a moment, every module's own mode back afterwards."""

from __future__ import annotations

import pytest
import torch
from helpers import build_model


@pytest.fixture
def vae(make_cfg):
    return build_model(make_cfg("model=vae")).eval()


def test_eval_mode_restores_each_modules_mode(vae):
    from genlab.modes import eval_mode

    vae.train()
    vae.encoder.eval()  # e.g. a frozen part
    with eval_mode(vae):
        assert not vae.training and not torch.is_grad_enabled()
    assert vae.training and vae.decoder.training and not vae.encoder.training


def test_eval_mode_restores_the_modes_after_an_error(vae):
    from genlab.modes import eval_mode

    vae.train()
    with pytest.raises(RuntimeError), eval_mode(vae):
        raise RuntimeError("stopped while drawing")
    assert vae.training and all(module.training for module in vae.modules())
    assert torch.is_grad_enabled()
