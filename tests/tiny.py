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

# The pretraining pipeline at its smallest (`PretrainSettings`): 300 digits, VAEs of 2 epochs.
TINY_PIPELINE = {
    "start_latent": 20,
    "vae_epochs": 2,
    "manager_epochs": 2,
    "base_filters": 4,
    "max_samples": 300,
    "n_neighbors": 15,
    "min_cluster_size": 10,
    "device": "cpu",
}
