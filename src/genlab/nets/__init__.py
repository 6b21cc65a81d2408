"""Plain nn.Modules (encoders, decoders, generators, discriminators), injected through Hydra `_target_`.

Every net takes its sizes from the model that builds it: encoders and discriminators get `image_shape`
and `out_features`, decoders and generators get `latent_dim` and `image_shape`. None ends in an output
activation: the model applies the one that matches its pixel range (sigmoid or tanh).
"""
