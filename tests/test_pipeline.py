"""Paper 001's pretraining pipeline without the slow parts: the settings and what each step's
cached result depends on, the record a checkpoint keeps (and its checks on untrusted JSON),
the scores it holds against hand-counted data, and the manager pretraining on a fake dataset.
The steps that train VAEs and run UMAP are tested end to end in test_dynamic_vae.py."""

from __future__ import annotations

import copy
import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from moa_core.analysis.cluster_finder import ClusterFinding
from moa_core.analysis.latent_size import LatentSize, find_latent_size
from moa_core.data import Dataset
from moa_core.models import ConfigError
from moa_core.train.pipeline_record import (
    MAX_POINTS,
    PipelineRecord,
    RecordError,
    build_record,
    cluster_scores,
    manager_scores,
    scatter_points,
    summarize_clusters,
    true_classes,
)
from moa_core.train.pretraining import (
    FINAL_LR,
    STEPS,
    ClusterSearch,
    PipelineStopped,
    PretrainSettings,
    SizeFinding,
    final_overrides,
    pretrain_manager,
    step_key,
)

# --- settings ---------------------------------------------------------------------------


def test_take_splits_pretraining_keys_from_the_final_models() -> None:
    overrides = {
        "vae_epochs": 2,
        "manager_epochs": 3,
        "min_cluster_size": 10,
        "start_latent": 20,
        "max_samples": 300,
        "seed": 1,
        "device": "cpu",
        "batch_size": 50,
        "epochs": 4,
        "alpha": 10.0,
    }
    settings, rest = PretrainSettings.take(overrides)
    assert (settings.vae_epochs, settings.manager_epochs) == (2, 3)
    assert (settings.min_cluster_size, settings.start_latent) == (10, 20)
    # The run-wide keys reach both sides; the final model's own keys only the rest.
    assert (settings.max_samples, settings.seed, settings.device) == (300, 1, "cpu")
    assert settings.batch_size == 50
    assert rest == {
        "max_samples": 300,
        "seed": 1,
        "device": "cpu",
        "batch_size": 50,
        "epochs": 4,
        "alpha": 10.0,
    }
    assert overrides["vae_epochs"] == 2  # the caller's dict is left alone
    defaults, rest = PretrainSettings.take({})
    assert defaults == PretrainSettings() and rest == {}
    assert defaults.n_neighbors == 0 and defaults.min_cluster_size == 0  # Eq. 10, 2 % of N
    assert PretrainSettings.take({"cluster_selection": "eom"})[0].cluster_selection == "eom"


@pytest.mark.parametrize(
    ("bad", "words"),
    [
        ({"vae_epochs": 0}, "vae_epochs"),
        ({"manager_epochs": 0}, "manager_epochs"),
        ({"start_latent": 0}, "start_latent"),
        ({"batch_size": 0}, "batch_size"),
        ({"base_filters": 0}, "base_filters"),
        ({"threshold": 0.0}, "threshold"),
        ({"threshold": 1.5}, "threshold"),
        ({"n_neighbors": -1}, "n_neighbors"),
        ({"min_cluster_size": -5}, "min_cluster_size"),
        ({"max_samples": -1}, "max_samples"),
        ({"cluster_selection": "best"}, "cluster_selection"),
        ({"start_latent": "twenty"}, "pretraining"),  # a string compared with a number
        ({"manager_epochs": 2.5}, "'manager_epochs' must be int"),
        ({"manager_lr": "fast"}, "'manager_lr' must be float"),
        ({"num_clusters": 3}, "pretrain=false"),  # what the pretraining decides itself
        ({"latent_sizes": [3]}, "pretrain=false"),
    ],
)
def test_take_rejects_bad_values_as_config_errors(bad: dict, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        PretrainSettings.take(bad)


def test_threshold_one_is_allowed() -> None:
    assert PretrainSettings.take({"threshold": 1.0})[0].threshold == 1.0


def test_min_cluster_size_one_is_refused_before_hdbscan_sees_it() -> None:
    with pytest.raises(ConfigError, match="at least 2"):
        PretrainSettings(min_cluster_size=1)


def test_step_keys_hold_exactly_what_each_step_depends_on() -> None:
    base = PretrainSettings(vae_epochs=2, manager_epochs=2, min_cluster_size=10)
    keys = {step: step_key("digits", base, step) for step in STEPS}
    assert all(key[0] == "digits" for key in keys.values())
    # Each step's key extends the one before it: a change upstream invalidates downstream.
    assert keys["clusters"][: len(keys["size"])] == keys["size"]
    assert keys["manager"][: len(keys["clusters"])] == keys["clusters"]

    def changed(**kwargs) -> dict[str, bool]:
        other = PretrainSettings(**{**base.__dict__, **kwargs})
        return {step: step_key("digits", other, step) != keys[step] for step in STEPS}

    assert changed(min_cluster_size=20) == {"size": False, "clusters": True, "manager": True}
    assert changed(n_neighbors=15) == {"size": False, "clusters": True, "manager": True}
    assert changed(cluster_selection="eom") == {"size": False, "clusters": True, "manager": True}
    assert changed(manager_epochs=5) == {"size": False, "clusters": False, "manager": True}
    assert changed(manager_lr=1e-2) == {"size": False, "clusters": False, "manager": True}
    for upstream in ({"vae_epochs": 3}, {"start_latent": 50}, {"threshold": 0.95}):
        assert changed(**upstream) == dict.fromkeys(STEPS, True)
    assert changed(max_samples=300) == dict.fromkeys(STEPS, True)
    assert changed(seed=1) == dict.fromkeys(STEPS, True)
    assert changed() == dict.fromkeys(STEPS, False)  # the same settings: the same keys
    assert step_key("mnist", base, "size") != keys["size"]
    with pytest.raises(ValueError):
        step_key("digits", base, "mixture")


def test_final_overrides_keep_the_found_k_and_sizes_over_the_callers() -> None:
    manager = _manager_stub(k=3, sizes=(2, 4, 3))
    settings = PretrainSettings(batch_size=50, max_samples=300, seed=2, device="cpu")
    merged = final_overrides(
        manager.model_config,
        settings,
        {"epochs": 3, "alpha": 1.0, "num_clusters": 9, "latent_sizes": [1]},
    )
    assert merged["lr"] == FINAL_LR == 1e-4  # paper 001, Sec. IV.D
    assert (merged["epochs"], merged["alpha"]) == (3, 1.0)
    assert (merged["batch_size"], merged["max_samples"], merged["seed"]) == (50, 300, 2)
    assert merged["num_clusters"] == 3 and merged["latent_sizes"] == [2, 4, 3]
    assert merged["base_filters"] == manager.model_config.base_filters
    assert final_overrides(manager.model_config, settings, {"lr": 1e-3})["lr"] == 1e-3


# --- a fake dataset and a hand-made HDBSCAN verdict -------------------------------------

# 12 samples of 3 classes (labels 3, 7, 9), 4 each; HDBSCAN's clusters are the classes under
# a permutation (class 3 → cluster 2, 7 → 0, 9 → 1) and the last sample of each class is noise.
LABELS = np.array([3, 3, 3, 3, 7, 7, 7, 7, 9, 9, 9, 9])
CLUSTER_OF_CLASS = {0: 2, 1: 0, 2: 1}
NOISE = np.array([3, 7, 11])


def fake_dataset(labels: np.ndarray = LABELS, size: int = 16) -> Dataset:
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(len(labels), 1, size, size, generator=generator)
    return Dataset("fake", x, torch.as_tensor(labels), "image", ["three", "seven", "nine"])


def perfect_clusters() -> ClusterFinding:
    truth = np.repeat(np.arange(3), 4)
    centres = np.array([[0.0, 0.0], [50.0, 0.0], [0.0, 50.0]])
    offsets = np.tile([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], (3, 1))
    embedding = centres[truth] + offsets
    labels = np.array([CLUSTER_OF_CLASS[c] for c in truth])
    soft = np.eye(3)[labels] * 0.9 + 0.1 / 3
    labels[NOISE] = -1
    return ClusterFinding(embedding, labels, soft)


def manager_probs(wrong: int | None = None) -> np.ndarray:
    """The manager picks HDBSCAN's cluster for every sample (noise too), except `wrong`."""
    chosen = np.array([CLUSTER_OF_CLASS[c] for c in np.repeat(np.arange(3), 4)])
    if wrong is not None:
        chosen[wrong] = (chosen[wrong] + 1) % 3
    return np.eye(3)[chosen] * 0.7 + 0.1


LATENT = LatentSize(2, 0.9, np.array([0.6, 0.95, 1.0]))


def make_record(wrong: int | None = 0) -> PipelineRecord:
    seconds = {"large_vae": 1.5, "clusters": 2}
    data, clusters = fake_dataset(), perfect_clusters()
    summary = summarize_clusters(clusters, data)
    return build_record(data, LATENT, clusters, summary, (2, 4, 3), manager_probs(wrong), seconds)


def test_true_classes_index_the_class_names() -> None:
    np.testing.assert_array_equal(true_classes(fake_dataset()), np.repeat(np.arange(3), 4))


def test_build_record_scores_a_hand_made_run() -> None:
    record = make_record(wrong=0)  # sample 0 (class 3, labelled) goes to the wrong expert
    assert (record.dataset, record.samples, record.threshold) == ("fake", 12, 0.9)
    assert record.explained == [0.6, 0.95, 1.0] and record.latent_size == 2
    assert record.k_found == 3 and record.latent_sizes == [2, 4, 3]
    assert record.labeled_fraction == 0.75  # 9 of 12 are not noise
    assert record.acc_labeled == 1.0  # a permutation of the classes is a perfect clustering
    assert record.gmm_acc == 1.0  # three far-apart groups of four points
    assert record.manager_acc == round(11 / 12, 4)
    assert record.manager_agreement == round(8 / 9, 4)
    assert 0 < record.manager_nmi < 1 and 0 < record.manager_ari < 1
    # Rows: HDBSCAN's label (labelled samples only); columns: the manager's argmax.
    assert record.confusion_clusters == [[3, 0, 0], [0, 3, 0], [1, 0, 2]]
    # Rows: true class (all samples); class 3 is cluster 2, except sample 0 (→ cluster 0).
    assert record.confusion_classes == [[1, 0, 3], [4, 0, 0], [0, 4, 0]]
    assert sum(map(sum, record.confusion_classes)) == 12
    assert record.class_names == ["three", "seven", "nine"]
    assert record.points[0] == [0.0, 0.0, 2.0, 0.0]  # [x, y, HDBSCAN label, class]
    assert record.points[3] == [1.0, 1.0, -1.0, 0.0]  # noise
    assert len(record.points) == 12
    assert record.seconds == {"large_vae": 1.5, "clusters": 2}
    assert record.summary() == {
        "k_found": 3,
        "labeled_fraction": 0.75,
        "acc_labeled": 1.0,
        "manager_acc": round(11 / 12, 4),
        "manager_nmi": record.manager_nmi,
        "latent_sizes": [2, 4, 3],
    }


def test_a_manager_that_follows_hdbscan_scores_perfectly() -> None:
    record = make_record(wrong=None)
    assert record.manager_acc == record.manager_nmi == record.manager_ari == 1.0
    assert record.manager_agreement == 1.0
    assert record.confusion_clusters == [[3, 0, 0], [0, 3, 0], [0, 0, 3]]


def test_cluster_scores_without_any_cluster_are_zero() -> None:
    clusters = ClusterFinding(np.zeros((5, 2)), np.full(5, -1), np.zeros((5, 0)))
    assert clusters.k == 0
    assert cluster_scores(clusters, np.zeros(5, dtype=int)) == {
        "k_found": 0,
        "labeled_fraction": 0.0,
        "acc_labeled": 0.0,
        "gmm_acc": 0.0,
    }


def test_manager_scores_count_every_sample_of_every_class() -> None:
    truth = np.repeat(np.arange(3), 4)
    scores = manager_scores(perfect_clusters(), manager_probs(wrong=5), truth, classes=4)
    assert len(scores["confusion_classes"]) == 4 and scores["confusion_classes"][3] == [0, 0, 0]
    assert np.asarray(scores["confusion_classes"]).sum() == 12


def test_scatter_points_keep_a_seeded_subsample_of_large_runs() -> None:
    n = MAX_POINTS + 500
    rng = np.random.default_rng(0)
    clusters = ClusterFinding(rng.normal(size=(n, 2)), np.zeros(n, dtype=int), np.ones((n, 1)))
    truth = np.arange(n) % 7
    points = scatter_points(clusters, truth)
    assert len(points) == MAX_POINTS and all(len(p) == 4 for p in points)
    assert points == scatter_points(clusters, truth)  # the same subsample every time
    kept = [int(p[3]) for p in points]
    assert len(set(kept)) == 7


# --- the record as JSON ----------------------------------------------------------------


def test_record_round_trips_through_json() -> None:
    record = make_record()
    data = json.loads(json.dumps(record.to_dict()))
    again = PipelineRecord.from_dict(data)
    assert again == record
    assert again.to_dict() == record.to_dict()
    assert again.seconds == {"large_vae": 1.5, "clusters": 2.0}
    assert data["k_found"] == 3 and data["confusion_clusters"][2] == [1, 0, 2]


@pytest.mark.parametrize("data", [None, [], "record", 3, [("k_found", 3)]])
def test_from_dict_rejects_what_is_not_an_object(data) -> None:
    with pytest.raises(RecordError, match="must be an object"):
        PipelineRecord.from_dict(data)


@pytest.mark.parametrize("field", ["k_found", "points", "seconds", "class_names", "dataset"])
def test_from_dict_names_a_missing_field(field: str) -> None:
    data = make_record().to_dict()
    del data[field]
    with pytest.raises(RecordError, match=f"lacks '{field}'"):
        PipelineRecord.from_dict(data)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("k_found", "3"),
        ("k_found", True),  # a bool is not an int here
        ("k_found", 3.0),
        ("samples", None),
        ("labeled_fraction", "0.75"),
        ("labeled_fraction", False),
        ("dataset", 7),
        ("explained", "0.6, 0.95"),
        ("explained", [0.6, "0.95"]),
        ("latent_sizes", [2, 4.5, 3]),
        ("latent_sizes", [2, True, 3]),
        ("confusion_clusters", [[3, 0, 0], [0, 3, 0], "102"]),
        ("class_names", ["three", 7, "nine"]),
        ("points", [[0.0, 0.0, 2.0, None]]),
        ("seconds", [1.5]),
        ("seconds", {"large_vae": "fast"}),
        ("seconds", {"large_vae": True}),
    ],
)
def test_from_dict_rejects_a_wrong_type(field: str, value) -> None:
    data = make_record().to_dict()
    data[field] = value
    with pytest.raises(RecordError, match=f"'{field}' must be"):
        PipelineRecord.from_dict(data)


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("manager_acc", 10**400, "'manager_acc' is out of range"),  # `:.3f` would overflow
        ("manager_agreement", float("nan"), "'manager_agreement' is out of range"),
        ("latent_size", 10**12, "'latent_size' is out of range"),
        ("confusion_clusters", [[10**30, 0, 0], [0, 3, 0], [1, 0, 2]], "out of range"),
        ("points", [[1e300, 0.0, 0.0, 0.0]], "'points' is out of range"),
        ("points", [[0.0, 0.0, 3.0, 0.0]], "label < K"),  # HDBSCAN label K: no such cluster
        ("points", [[0.0, 0.0, 0.0, 3.0]], "label < K"),  # class 3 of 3 class names
        ("threshold", 0.0, "threshold is out of range"),
        ("confusion_clusters", [[-1, 0, 0], [0, 3, 0], [1, 0, 2]], "K counts ≥ 0"),
    ],
)
def test_from_dict_rejects_values_a_page_cannot_draw(field: str, value, words: str) -> None:
    data = make_record().to_dict()
    data[field] = value
    with pytest.raises(RecordError, match=words):
        PipelineRecord.from_dict(data)


def test_from_dict_accepts_whole_numbers_for_floats() -> None:
    data = make_record().to_dict()
    data["labeled_fraction"], data["acc_labeled"] = 1, 0
    record = PipelineRecord.from_dict(data)
    assert record.labeled_fraction == 1 and record.acc_labeled == 0


def _mangled(change) -> dict:
    data = copy.deepcopy(make_record().to_dict())
    change(data)
    return data


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda d: d.update(latent_sizes=[2, 4]), "disagree with K"),
        (lambda d: d.update(k_found=4), "disagree with K"),
        (lambda d: d["confusion_clusters"].pop(), "disagree with K"),
        (lambda d: d["confusion_clusters"][1].append(0), "K counts"),
        (lambda d: d["confusion_classes"][0].pop(), "K counts"),
        (lambda d: d["confusion_classes"].append([0, 0, 0]), "one confusion row per class"),
        (lambda d: d["class_names"].pop(), "one confusion row per class"),
        (lambda d: d["points"][4].pop(), r"\[x, y, label < K, class\]"),
    ],
    ids=[
        "two-sizes-for-three",
        "k-of-four",
        "two-cluster-rows",
        "long-cluster-row",
        "short-class-row",
        "extra-class-row",
        "missing-class-name",
        "three-value-point",
    ],
)
def test_from_dict_rejects_mismatched_shapes(change, words: str) -> None:
    with pytest.raises(RecordError, match=words):
        PipelineRecord.from_dict(_mangled(change))


def test_record_error_is_a_value_error() -> None:
    assert issubclass(RecordError, ValueError)


# --- steps 6–8 on a fake dataset: no VAE, no UMAP ----------------------------------------


def _manager_stub(k: int, sizes: tuple[int, ...]):
    from moa_core.models import config_class
    from moa_core.train.pretraining import ManagerPretraining

    config = config_class("moe_vae")(
        in_channels=1, image_size=16, num_clusters=k, latent_sizes=sizes, base_filters=4
    )
    return ManagerPretraining(sizes, config, {}, np.zeros((1, k)), {})


def _size_and_search(clusters: ClusterFinding, dims: int = 6) -> tuple[SizeFinding, ClusterSearch]:
    rng = np.random.default_rng(0)
    codes = rng.normal(size=(len(clusters.labels), dims))
    codes[:, 0] *= 10  # one dominant direction: the finder keeps 1–2 dimensions
    size = SizeFinding(fake_dataset(), codes, LATENT, 0.5)
    summary = summarize_clusters(clusters, size.dataset)
    seconds = {"retrained_vae": 0.1, "clusters": 0.2}
    return size, ClusterSearch(codes, clusters, summary, seconds)


def test_pretrain_manager_fits_a_manager_to_the_soft_labels() -> None:
    size, search = _size_and_search(perfect_clusters())
    settings = PretrainSettings(manager_epochs=3, batch_size=4, base_filters=4, device="cpu")
    manager = pretrain_manager(size, search, settings)
    config = manager.model_config
    assert config.num_clusters == 3 and config.latent_sizes == manager.expert_sizes
    assert (config.in_channels, config.image_size, config.base_filters) == (1, 16, 4)
    labels = search.clusters.labels
    expected = [
        find_latent_size(size.codes[labels == c], settings.threshold).size for c in range(3)
    ]
    assert list(manager.expert_sizes) == expected  # the finder on each cluster's own codes
    assert manager.probs.shape == (12, 3)
    np.testing.assert_allclose(manager.probs.sum(1), 1.0, rtol=1e-5)
    assert manager.state and all(name.startswith("manager.") for name in manager.state)
    assert set(manager.record.seconds) == {
        "large_vae", "retrained_vae", "clusters", "latent_sizes", "manager",
    }  # fmt: skip
    assert manager.record.k_found == 3 and manager.record.latent_sizes == list(manager.expert_sizes)
    # The same seed, the same manager: the step is reproducible, so a page may cache it.
    again = pretrain_manager(size, search, settings)
    for name, value in manager.state.items():
        torch.testing.assert_close(again.state[name], value)
    # The state loads into the MoE-VAE the step configured.
    from moa_core.models import build_model

    model = build_model(config)
    assert not model.load_state_dict(manager.state, strict=False).unexpected_keys


def test_the_pretrained_manager_learns_the_soft_labels() -> None:
    size, search = _size_and_search(perfect_clusters())
    labelled = search.clusters.labels >= 0
    soft = search.clusters.soft[labelled]

    def divergence(epochs: int) -> tuple[float, float]:
        settings = PretrainSettings(manager_epochs=epochs, batch_size=4, base_filters=4)
        manager = pretrain_manager(size, search, replace(settings, device="cpu"))
        p = manager.probs[labelled]
        kl = float((soft * (np.log(soft) - np.log(p))).sum(1).mean())
        return kl, manager.record.manager_agreement

    (barely, _), (trained, agreement) = divergence(1), divergence(30)
    assert trained < 0.1 * barely  # KL(soft ‖ manager) falls by an order of magnitude
    assert agreement == 1.0  # and its argmax is HDBSCAN's label on every labelled sample


def test_pretrain_manager_stops_when_hdbscan_found_nothing() -> None:
    nothing = ClusterFinding(np.zeros((12, 2)), np.full(12, -1), np.zeros((12, 0)))
    size, search = _size_and_search(nothing)
    with pytest.raises(PipelineStopped, match="no cluster"):
        pretrain_manager(size, search, PretrainSettings(device="cpu"))
