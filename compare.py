"""Write the VAE-vs-GAN report of a sweep: `python compare.py outputs/vae_vs_gan/multiruns/<time>`."""

import argparse
import sys

from genlab.errors import GenlabError
from genlab.sweeps.report import write_report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("sweep_dir", help="the folder of a `python train.py -m ...` sweep")
    args = parser.parse_args()
    try:
        path = write_report(args.sweep_dir)
    except GenlabError as error:
        sys.exit(f"error: {error}")
    print(
        f"wrote {path}, {path.with_suffix('.csv')}, {path.parent / 'runs.csv'} and {path.parent / 'figures'}/"
    )


if __name__ == "__main__":
    main()
