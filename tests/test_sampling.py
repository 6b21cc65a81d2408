"""genlab.sampling.sample_uint8: the samples every metric measures, seeded, independent of the batch size."""

from __future__ import annotations

import torch
from helpers import build_model

from genlab.metrics.inception import to_uint8
from genlab.sampling import sample_uint8


def test_samples_are_uint8_seeded_and_do_not_depend_on_the_batch_size(make_cfg):
    model = build_model(make_cfg("model=gan")).eval()
    first = sample_uint8(model, 10, torch.Generator().manual_seed(3), batch_size=4)
    assert first.dtype == torch.uint8 and first.shape == (10, *model.image_shape)
    assert first.device.type == "cpu"
    assert torch.equal(first, sample_uint8(model, 10, torch.Generator().manual_seed(3), batch_size=10))
    assert not torch.equal(first, sample_uint8(model, 10, torch.Generator().manual_seed(4), batch_size=4))
    # what evaluate.py and the fid callback computed by hand before: one draw of latents, decoded in batches
    latents = model.sample_latent(10, torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = torch.cat([to_uint8(model.to_unit(model.generate(z))) for z in latents.split(4)])
    assert torch.equal(first, expected)


def test_sampling_leaves_the_model_in_its_mode(make_cfg):
    model = build_model(make_cfg("model=vae")).train()
    with_progress = sample_uint8(model, 3, torch.Generator().manual_seed(0), progress="sampling")
    assert model.training and all(module.training for module in model.modules())
    assert torch.is_grad_enabled()
    assert torch.equal(with_progress, sample_uint8(model.eval(), 3, torch.Generator().manual_seed(0)))
