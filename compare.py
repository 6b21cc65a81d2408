"""Write the comparison report of a sweep: `python compare.py outputs/vae_vs_gan/multiruns/<time>`."""

import argparse

from genlab.errors import exits_on_error
from genlab.report.report import write_report


@exits_on_error
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("sweep_dir", help="the folder of a `python train.py -m ...` sweep")
    args = parser.parse_args()
    path = write_report(args.sweep_dir)
    print(
        f"wrote {path}, {path.with_suffix('.csv')}, {path.parent / 'runs.csv'} and {path.parent / 'figures'}/"
    )


if __name__ == "__main__":
    main()
