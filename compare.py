"""Write the comparison report of a sweep: `python compare.py outputs/vae_vs_gan/multiruns/<time>`.

Several sweep dirs are read as one sweep (`python compare.py DIR1 DIR2 --out DIR`), e.g. a grid run in parts.
"""

import argparse

from genlab.errors import exits_on_error
from genlab.report.report import write_report


@exits_on_error
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("sweep_dirs", nargs="+", help="the folder(s) of `python train.py -m ...` sweeps")
    parser.add_argument("--out", help="where the report goes (default: the first sweep folder)")
    args = parser.parse_args()
    path = write_report(args.sweep_dirs, args.out)
    print(
        f"wrote {path}, {path.with_suffix('.csv')}, {path.parent / 'runs.csv'} and {path.parent / 'figures'}/"
    )


if __name__ == "__main__":
    main()
