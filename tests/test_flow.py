"""Flow matching: its loss on known draws, its solvers, the exact likelihood of a known Gaussian flow, the
ODE round trip, and the errors of bad settings."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import model_args, net_config
from torch import nn

from genlab.errors import ConfigError
from genlab.models.flow import FlowMatching
from genlab.models.ode import ODESampler

TINY_NET = net_config("flow_mnist", "net", channels=32, channel_mult=[1], attention_levels=[], heads=1)
EULER = {"_target_": "genlab.models.ode.ODESampler", "method": "euler", "nfe": 4, "atol": 1e-5, "rtol": 1e-5}


def make_flow(**values) -> FlowMatching:
    torch.manual_seed(0)
    args = model_args("flow", net=TINY_NET, image_shape=(1, 8, 8), sampler=EULER) | values
    return FlowMatching(**args)


class Linear(nn.Module):
    """v(t, x) = A x: the flow carries N(0, I) to N(0, M M^T) with M = exp(A)."""

    def __init__(self, matrix: torch.Tensor) -> None:
        super().__init__()
        self.matrix = matrix

    def forward(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return (x.flatten(1) @ self.matrix.T).view_as(x)


class Zero(nn.Module):
    def forward(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x)


@pytest.mark.parametrize("path", ["ot", "vp"])
def test_the_loss_of_a_zero_velocity_is_the_mean_square_of_the_path_velocity(path):
    flow = make_flow(path=path)
    flow.net = Zero()
    images = torch.rand(5, 1, 8, 8) * 2 - 1
    loss = flow.loss(images, torch.Generator().manual_seed(3))
    draws = torch.Generator().manual_seed(3)  # the same draws, in the loss's order: x0, t (eps unused)
    x0, t = torch.randn(images.shape, generator=draws), torch.rand(5, generator=draws).view(5, 1, 1, 1)
    if path == "ot":
        target = images - x0
    else:
        target = math.pi / 2 * (torch.cos(math.pi / 2 * t) * images - torch.sin(math.pi / 2 * t) * x0)
    assert torch.allclose(loss, target.pow(2).mean(), atol=1e-6)


def test_the_net_fits_the_velocity_of_a_point_mass():
    """All data at one image c: the optimal velocity at (t, x) is (c - x) / (1 - t), learned to a loss near
    zero's scale by a few hundred steps, and sampling lands near c."""
    flow = make_flow(sampler=EULER | {"nfe": 20})
    target = torch.full((16, 1, 8, 8), 0.5)
    optimizer = torch.optim.Adam(flow.net.parameters(), 2e-3)
    for _ in range(150):
        loss = flow.loss(target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    flow.net_ema = None
    flow.eval()
    with torch.no_grad():
        samples = flow.sample(8, torch.Generator().manual_seed(0))
    assert (samples - 0.5).abs().mean() < 0.15, (samples - 0.5).abs().mean()


@pytest.mark.parametrize("method,nfe", [("euler", 6), ("midpoint", 6), ("dopri5", None)])
def test_a_solver_draws_the_same_images_at_the_same_seed_and_counts_its_evaluations(method, nfe):
    flow = make_flow(sampler=EULER | {"method": method, "nfe": nfe})
    flow.eval()
    with torch.no_grad():
        first = flow.sample(3, torch.Generator().manual_seed(1))
        second = flow.sample(3, torch.Generator().manual_seed(1))
        other = flow.sample(3, torch.Generator().manual_seed(2))
    assert torch.equal(first, second) and not torch.equal(first, other)
    spent = flow.sampling_settings()["nfe"]
    assert spent == nfe if nfe else spent >= 6  # dopri5: 6 evaluations a step at least


def test_fixed_step_solvers_integrate_a_linear_field_to_their_order():
    """dx/dt = -x from x(0) = 1 to x(1) = e^-1: Euler's error falls as 1/steps, the midpoint rule's as
    1/steps^2."""
    velocity = Linear(-torch.eye(1))
    x = torch.ones(1, 1)
    errors = {}
    for method in ("euler", "midpoint"):
        for nfe in (8, 16):
            path = ODESampler(method, nfe, 1e-5, 1e-5).integrate(velocity, x, 0.0, 1.0)
            errors[method, nfe] = (path[-1] - math.exp(-1)).abs().item()
    assert 1.8 < errors["euler", 8] / errors["euler", 16] < 2.2
    assert 3.5 < errors["midpoint", 8] / errors["midpoint", 16] < 4.5
    adaptive = ODESampler("dopri5", None, 1e-8, 1e-8).integrate(velocity, x, 0.0, 1.0)[-1]
    assert abs(adaptive.item() - math.exp(-1)) < 1e-6


@pytest.mark.parametrize("trace", ["exact", "hutchinson"])
def test_the_log_likelihood_of_a_linear_flow_is_the_gaussian_density(trace):
    torch.manual_seed(0)
    dims = 3
    matrix = torch.tensor([[0.3, 0.5, 0.0], [-0.2, -0.4, 0.1], [0.0, 0.3, 0.2]])
    scale = torch.linalg.matrix_exp(matrix)  # x1 = M x0
    gaussian = torch.distributions.MultivariateNormal(
        torch.zeros(dims), scale_tril=None, covariance_matrix=scale @ scale.T
    )
    x = gaussian.sample((400,))
    solver = ODESampler("dopri5", None, 1e-7, 1e-7)
    log_p = solver.log_likelihood(Linear(matrix), x, trace, torch.Generator().manual_seed(0))
    expected = gaussian.log_prob(x)
    if trace == "exact":
        assert torch.allclose(log_p, expected, atol=1e-4)
    else:  # unbiased: the Rademacher estimate of the trace averages out over the samples
        assert abs((log_p - expected).mean().item()) < 0.05 and (log_p - expected).std() > 0


def test_bits_per_dim_of_the_identity_flow_is_that_of_a_standard_normal():
    flow = make_flow(sampler=EULER | {"method": "dopri5"})
    flow.net, flow.net_ema = Zero(), None
    images = torch.randint(0, 256, (4, 1, 8, 8), dtype=torch.uint8)
    bits = flow.bits_per_dim(images, torch.Generator().manual_seed(0), trace="exact")
    noise = torch.rand(images.shape, generator=torch.Generator().manual_seed(0))
    x = -1 + 2 * (images.float() + noise) / 256  # the dequantised images in the model's [-1, 1]
    log_p = torch.distributions.Normal(0.0, 1.0).log_prob(x).flatten(1).sum(1) + 64 * math.log(2)
    assert torch.allclose(bits, -log_p / (64 * math.log(2)) + 8, atol=1e-4)


def test_the_ode_round_trip_returns_the_image():
    flow = make_flow(sampler=EULER | {"method": "dopri5", "atol": 1e-6, "rtol": 1e-6}, ema_decay=None)
    with torch.no_grad():  # a velocity that moves the images: the U-Net's last layer starts at zero
        for weight in flow.net.parameters():
            weight.add_(torch.randn_like(weight) * 0.05)
    flow.eval()
    images = torch.rand(3, 1, 8, 8) * 1.6 - 0.8
    noise = flow.encode(images)
    assert noise.shape == (3, 64) and not torch.allclose(noise, images.flatten(1), atol=1e-2)
    assert (flow.reconstruct(images) - images).abs().max() < 1e-3


def test_the_trajectory_runs_from_the_noise_to_the_sample():
    flow = make_flow()
    flow.eval()
    z = flow.sample_latent(2, torch.Generator().manual_seed(0))
    with torch.no_grad():
        path = flow.trajectory(z, 3)
        assert path.shape == (3, 2, 1, 8, 8)
        assert torch.equal(path[0], z.view(2, 1, 8, 8).clamp(-1, 1))
        assert torch.equal(path[-1], flow.generate(z))


def test_evaluation_can_change_the_solver():
    flow = make_flow()
    flow.configure_sampler(method="midpoint", nfe=8)
    assert flow.sampler.settings() == {"method": "midpoint", "nfe": 8}
    with pytest.raises(ConfigError, match=r"sampler.nfe=7.*multiple of 2"):
        flow.configure_sampler(nfe=7)


@pytest.mark.parametrize(
    "values,message",
    [
        ({"path": "straight"}, r"model.path='straight'.*'ot', 'vp'"),
        ({"sampler": EULER | {"method": "rk4"}}, r"model.sampler.method='rk4'.*dopri5"),
        ({"sampler": EULER | {"nfe": 0}}, r"model.sampler.nfe=0.*positive"),
        ({"sampler": EULER | {"method": "dopri5", "rtol": 0}}, r"model.sampler.rtol=0"),
        (
            {"net": TINY_NET | {"channel_mult": [1] * 5}},
            r"model.net.channel_mult=\[1, 1, 1, 1, 1\].*8 px.*at most 4 levels",
        ),
        ({"net": TINY_NET | {"channels": 48}}, r"model.net.channels=48.*multiple of 32"),
        ({"net": TINY_NET | {"attention_levels": [1]}}, r"model.net.attention_levels=\[1\].*levels 0 to 0"),
    ],
)
def test_bad_settings_name_the_key_and_the_fix(values, message):
    with pytest.raises(ConfigError, match=message):
        make_flow(**values)


def test_a_model_without_a_solver_says_so():
    from genlab.models.gan import GAN

    gan = GAN(**model_args("gan", image_shape=(1, 28, 28)))
    with pytest.raises(ConfigError, match=r"sampler=\{'nfe': 10\}.*one forward pass.*model=flow"):
        gan.configure_sampler(nfe=10)


def test_a_checkpoint_of_the_first_flow_config_loads_in_todays_form():
    net = TINY_NET | {"channel_mult": [1, 2], "attention_levels": [1]}
    flow = make_flow(net=net)
    today = dict(flow.hparams)
    # the first flow checkpoints named attention by resolution in px (level 1 of 8 px: 4 px) and recorded
    # a latent size
    first = today | {"latent_dim": 64, "net": {**today["net"], "attention_resolutions": [4]}}
    del first["net"]["attention_levels"]
    upgraded = FlowMatching.upgrade_hparams(first)
    assert "latent_dim" not in upgraded and upgraded["net"]["attention_levels"] == [1]
    assert "attention_resolutions" not in upgraded["net"]
    loaded = FlowMatching(**upgraded)
    loaded.load_state_dict(flow.state_dict())  # the same architecture
