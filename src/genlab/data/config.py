"""The data modules' settings as conf/data/*.yaml holds them, for code that builds a data module outside a
Hydra run (evaluate.py's `data._target_=...`, the benchmarks): the YAML is the one source of every default."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from omegaconf import DictConfig, OmegaConf

from genlab.errors import ConfigError

#: conf/data/ of this checkout: one YAML file per data module
DATA_CONF_DIR = Path(__file__).resolve().parents[3] / "conf" / "data"


def conf_file(path: Path) -> DictConfig:
    """A conf/<group>/ file as Hydra composes it: the files of its group that its defaults list names (e.g.
    conf/data/imagenette_64.yaml's `imagenette`), then its own keys."""
    config = OmegaConf.load(path)
    assert isinstance(config, DictConfig), path
    entries = config.pop("defaults", None)
    if entries is None:
        return config
    parts = [conf_file(path.with_name(f"{entry}.yaml")) for entry in entries if entry != "_self_"]
    return cast(DictConfig, OmegaConf.merge(*parts, config))


def data_settings(name: str) -> dict[str, Any]:
    """conf/data/<name>.yaml (or the file whose `_target_` is `name`) as a plain dict, without the keys it
    takes from the run (`data_dir: ${paths.data_dir}`, `pixel_range: ${model.pixel_range}`): the caller
    sets those."""
    files = sorted(DATA_CONF_DIR.glob("*.yaml"))
    configs: dict[str, Any] = {path.stem: conf_file(path) for path in files}
    config = configs.get(name) or next((c for c in configs.values() if c.get("_target_") == name), None)
    if config is None:
        targets = sorted({str(c.get("_target_")) for c in configs.values()})
        raise ConfigError(
            f"data={name!r} is neither a file of {DATA_CONF_DIR} nor the `_target_` of one: choose one of "
            f"{sorted(configs)} or {targets}"
        )
    values = cast(dict[str, Any], OmegaConf.to_container(config, resolve=False))
    return {key: value for key, value in values.items() if not OmegaConf.is_interpolation(config, key)}
