"""The lab's families as scikit-learn estimators, for people who cluster images in Python:

    from moa_core.estimators import MoAPlus
    labels = MoAPlus(n_clusters=10, random_state=0).fit(images).labels_

They train through the same `train_model` as `moa train` (same defaults, same seeds, same
result) and save the same validated safetensors checkpoints."""

from moa_core.estimators.classification import MultiPathClassifier
from moa_core.estimators.clustering import DMVAE, MoA, MoAPlus, MoEVAE, NeuralEM, VaDE

__all__ = ["DMVAE", "MoA", "MoAPlus", "MoEVAE", "MultiPathClassifier", "NeuralEM", "VaDE"]
