"""genlab's resumable sweeper (conf/hydra/sweeper/resumable.yaml): genlab.launch.resumable_sweep."""
