"""Sample grids of finished runs side by side in one PNG, e.g. each family's best on the results page:

    python -m genlab.report.side_by_side OUT.png "best_mnist_vae=results/.../vae_samples.png" ...

Each argument is TITLE=PNG (or a bare PNG, titled by its file name). `compare.py` draws the same figure from
the runs of a sweep; this draws it from pictures that outlived their runs (the committed results/).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from genlab.errors import ConfigError, exits_on_error
from genlab.report.report import pictures_figure


def panel(argument: str) -> tuple[str, Path]:
    """The (title, path) of one TITLE=PNG argument; a missing file stops with its path."""
    title, _, path = argument.rpartition("=")
    picture = Path(path)
    if not picture.is_file():
        raise ConfigError(
            f"{argument!r}: no picture at {str(picture)!r}; pass TITLE=PNG with an existing PNG"
        )
    return title or picture.stem, picture


@exits_on_error
def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("out", help="the PNG to write")
    parser.add_argument("pictures", nargs="+", help="TITLE=PNG, one per panel, left to right")
    parser.add_argument("--per-row", type=int, default=4, help="panels per row (default 4)")
    args = parser.parse_args(argv)
    panels = [panel(argument) for argument in args.pictures]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    pictures_figure(panels, args.per_row).savefig(out, dpi=120)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
