"""The pictures themselves, as [N, C, H, W] images in [0, 1]: shared by the callbacks and generate.py.

Call these inside `genlab.modes.eval_mode(model)` (eval mode, no grad).
"""

from __future__ import annotations

import torch

from genlab.errors import require
from genlab.models.base import GenerativeModel

INTERPOLATIONS = ("linear", "slerp")


def fixed_latents(model: GenerativeModel, n: int, seed: int) -> torch.Tensor:
    """`n` latent vectors from the model's prior, drawn on the CPU from their own generator (never the
    global RNG, so drawing them does not change training)."""
    return model.sample_latent(n, generator=torch.Generator().manual_seed(int(seed))).cpu()


def interpolate(z0: torch.Tensor, z1: torch.Tensor, steps: int, mode: str = "slerp") -> torch.Tensor:
    """[P, D] start and end points -> [P, steps, D] paths that start at z0 and end at z1.

    `slerp` follows the great circle (White 2016, "Sampling generative networks"): a Gaussian's mass lies
    near a shell, and the midpoints of a straight line lie inside it, where the model saw few latents.
    """
    require(mode in INTERPOLATIONS, "interpolation.mode", mode, f"choose one of {INTERPOLATIONS}")
    require(int(steps) >= 2, "interpolation.steps", steps, "must be >= 2 (the two end points)")
    t = torch.linspace(0.0, 1.0, int(steps), device=z0.device).view(1, -1, 1)
    start, end = z0.unsqueeze(1), z1.unsqueeze(1)
    linear = (1.0 - t) * start + t * end
    if mode == "linear":
        return linear
    cos = torch.nn.functional.cosine_similarity(z0, z1, dim=1).clamp(-1.0, 1.0).view(-1, 1, 1)
    omega = torch.arccos(cos)
    sin_omega = torch.sin(omega)
    # Nearly parallel end points: the great circle is the straight line (and sin(omega) ~ 0).
    safe = sin_omega.abs() > 1e-6
    sin_omega = torch.where(safe, sin_omega, torch.ones_like(sin_omega))
    spherical = (torch.sin((1.0 - t) * omega) * start + torch.sin(t * omega) * end) / sin_omega
    return torch.where(safe, spherical, linear)


def sample_images(model: GenerativeModel, latents: torch.Tensor) -> torch.Tensor:
    """The model's images for `latents`, in [0, 1]."""
    return model.to_unit(model.generate(latents.to(model.device)))


def interpolation_images(
    model: GenerativeModel, z0: torch.Tensor, z1: torch.Tensor, steps: int, mode: str = "slerp"
) -> torch.Tensor:
    """One row of `steps` images per pair (z0[i], z1[i]), in row order: [P * steps, C, H, W]."""
    paths = interpolate(z0.to(model.device), z1.to(model.device), steps, mode)
    return sample_images(model, paths.flatten(0, 1))


def real_interpolation_images(
    model: GenerativeModel,
    first: torch.Tensor,
    last: torch.Tensor,
    steps: int,
    mode: str = "slerp",
    codes: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Per pair of real images (in the model's range), the real `first` image, `steps` images between their
    latent codes (`codes`, e.g. a GAN's inverted latents; default `model.encode`: the VAE's posterior
    means), then the real `last` image: [P * (steps + 2), C, H, W]."""
    first, last = first.to(model.device), last.to(model.device)
    mu0, mu1 = (model.encode(first), model.encode(last)) if codes is None else codes
    between = interpolation_images(model, mu0.to(model.device), mu1.to(model.device), steps, mode)
    between = between.unflatten(0, (len(first), int(steps)))
    rows = torch.cat([model.to_unit(first).unsqueeze(1), between, model.to_unit(last).unsqueeze(1)], dim=1)
    return rows.flatten(0, 1)


def trajectory_images(model: GenerativeModel, z: torch.Tensor, points: int) -> torch.Tensor:
    """Models that draw along a path (`draws_trajectories`): one row per latent of `points` images from its
    noise (t=0) to its sample (t=1), in row order: [N * points, C, H, W]."""
    path = model.trajectory(z.to(model.device), int(points))  # [points, N, C, H, W]
    return model.to_unit(path.transpose(0, 1).flatten(0, 1))


def reconstruction_images(model: GenerativeModel, images: torch.Tensor, nrow: int) -> torch.Tensor:
    """Rows of `nrow` inputs (in the model's range), each directly above a row of their reconstructions
    (`model.reconstruct`), to be shown with `nrow` images per row; a last partial row is left out."""
    images = images.to(model.device)
    return method_rows(model.to_unit(images), [model.to_unit(model.reconstruct(images))], nrow)


def method_rows(originals: torch.Tensor, reconstructions: list[torch.Tensor], nrow: int) -> torch.Tensor:
    """Rows of `nrow` originals, each directly above one row per method of their reconstructions (all in
    [0, 1], in the same order), to be shown with `nrow` images per row; a last partial row is left out."""
    nrow = min(int(nrow), len(originals))
    rows = []
    for start in range(0, len(originals) - len(originals) % nrow, nrow):
        rows += [images[start : start + nrow].cpu() for images in (originals, *reconstructions)]
    return torch.cat(rows)
