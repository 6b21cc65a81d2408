from genlab.train import train


def test_fast_dev_run_vae(make_cfg):
    cfg = make_cfg("debug=fdr")
    train(cfg)
