"""What older checkpoints' net configs left out, so that they load and resume as they did.

Checkpoints record each net's config as the YAML gave it. Before conf/nets/ held every setting of a net,
the net classes had defaults in code, and a config could leave a key out. These are those former defaults,
the values such a checkpoint's nets were built with. They never build a new net: conf/nets/ does that.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: net `_target_` -> the settings it took from its code when a config left them out
FORMER_DEFAULTS: dict[str, dict[str, Any]] = {
    "genlab.nets.mlp.MLPEncoder": {
        "hidden_dims": [1024, 512, 256],
        "activation": "leaky_relu",
        "negative_slope": 0.2,
        "dropout": 0.3,
    },
    "genlab.nets.mlp.MLPDecoder": {
        "hidden_dims": [256, 512, 1024],
        "activation": "leaky_relu",
        "negative_slope": 0.2,
    },
    "genlab.nets.conv.ConvEncoder": {
        "channels": [16, 32, 64, 128],
        "kernel_size": 3,
        "pools": [2, 2, 2, 2],
        "activation": "relu",
        "negative_slope": 0.2,
    },
    "genlab.nets.conv.ConvDecoder": {
        "base_channels": 256,
        "base_size": 8,
        "channels": [128, 64, 32, 16, 8],
        "activation": "leaky_relu",
        "negative_slope": 0.2,
        "interpolate_mode": "nearest",
    },
    "genlab.nets.dcgan.DCGANGenerator": {"width": 64, "max_width": 512, "upsample": "transposed"},
    "genlab.nets.dcgan.DCGANDiscriminator": {
        "width": 64,
        "max_width": 512,
        "spectral_norm": True,
        "batch_norm": False,
        "conv3x3": False,
    },
    "genlab.nets.resnet.ResNetGenerator": {"width": 64, "max_width": 256},
    "genlab.nets.resnet.ResNetDiscriminator": {"width": 64, "max_width": 256, "spectral_norm": True},
}


def complete_net_configs(model_hparams: Mapping[str, Any]) -> dict[str, Any]:
    """The net configs among a checkpoint's model hyperparameters that lack a setting, each completed with
    its former defaults (empty when every net config is complete): pass them as overrides when loading."""
    completed: dict[str, Any] = {}
    for key, config in model_hparams.items():
        target = config.get("_target_") if isinstance(config, Mapping) else None
        former = FORMER_DEFAULTS.get(target) if isinstance(target, str) else None
        missing = {name: value for name, value in (former or {}).items() if name not in config}
        if missing:
            completed[key] = {**config, **missing}
    return completed
