"""Quality metrics: Inception features, FID/KID, precision/recall, digit classes, the VAE's bounds."""
