"""side_by_side: committed sample grids in one figure, and a clear error for a missing picture."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.image import imread, imsave

from genlab.report.side_by_side import main


def test_it_draws_each_picture_under_its_title(tmp_path, capsys):
    pictures = []
    for name, value in (("a", 0.0), ("b", 1.0)):
        pictures.append(tmp_path / f"{name}.png")
        imsave(pictures[-1], np.full((8, 8), value), cmap="gray", vmin=0, vmax=1)
    out = tmp_path / "figures" / "both.png"
    main([str(out), f"the VAE={pictures[0]}", str(pictures[1])])
    assert imread(out).shape[1] > imread(out).shape[0]  # two panels in a row
    assert f"wrote {out}" in capsys.readouterr().out


def test_a_missing_picture_names_its_path(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main([str(tmp_path / "out.png"), f"flow={tmp_path / 'gone.png'}"])
    error = capsys.readouterr().err
    assert "no picture at" in error and "gone.png" in error
    assert not (tmp_path / "out.png").exists()
