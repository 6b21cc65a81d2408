"""Loss terms against values worked out by hand."""

import math

import pytest
import torch

from genlab.models.losses import d_bce, d_hinge, g_bce, g_hinge, gaussian_kl


def test_kl_of_standard_normal_is_zero():
    assert torch.allclose(gaussian_kl(torch.zeros(4, 10), torch.zeros(4, 10)), torch.zeros(4))


def test_kl_known_values():
    # KL[N(1, 1) || N(0, 1)] = 1/2 per dimension; KL[N(0, e^2) || N(0, 1)] = (e^2 - 1 - 2) / 2.
    assert gaussian_kl(torch.ones(1, 3), torch.zeros(1, 3)).item() == pytest.approx(1.5)
    expected = 0.5 * (math.exp(2.0) - 1.0 - 2.0)
    assert gaussian_kl(torch.zeros(1, 1), torch.full((1, 1), 2.0)).item() == pytest.approx(expected)
    assert (gaussian_kl(torch.randn(50, 8), torch.randn(50, 8)) >= 0).all()


def test_bce_losses_at_an_undecided_discriminator():
    zero = torch.zeros(8, 1)
    assert d_bce(zero, zero).item() == pytest.approx(2 * math.log(2))
    assert g_bce(zero).item() == pytest.approx(math.log(2))
    # One-sided label smoothing: the real target is 0.9, the BCE at p = 1/2 is still log 2.
    assert d_bce(zero, zero, real_label=0.9).item() == pytest.approx(2 * math.log(2))
    confident = torch.full((8, 1), 10.0)
    assert d_bce(confident, -confident).item() < 1e-3
    assert d_bce(confident, -confident, real_label=0.9).item() > 0.5


def test_hinge_losses():
    assert d_hinge(torch.full((4, 1), 2.0), torch.full((4, 1), -2.0)).item() == 0.0
    assert d_hinge(torch.zeros(4, 1), torch.zeros(4, 1)).item() == pytest.approx(2.0)
    assert g_hinge(torch.full((4, 1), 3.0)).item() == pytest.approx(-3.0)
