"""Model and training settings small enough to train in about a second on two CPU cores."""

TINY_MODEL = {
    "expert_channels": [4, 8],
    "gate_channels": [4, 8],
    "latent_dim": 4,
    "num_clusters": 3,
}
TINY = {**TINY_MODEL, "max_samples": 200, "batch_size": 50, "device": "cpu", "epochs": 1}

# A two-path routing network in the same spirit: three blocks of 4–8 filters on 16×16 digits.
TINY_ROUTING = {"conv_channels": [4, 8, 8], "dense_units": 16, "gate_hidden": 4}
