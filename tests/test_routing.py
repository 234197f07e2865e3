"""Routing layers (paper 003, ch. 3), the multi-path networks, their gate regularization
(ch. 5), the routing figures and the image inputs of the Routing page."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from tiny import TINY_ROUTING

from moa_core.analysis.gates import Gate, all_gates, class_gate_values, most_skewed_gate
from moa_core.analysis.routing import (
    OUTPUT_UNITS,
    LayerView,
    gate_vectors,
    routing_views,
    unit_choices,
)
from moa_core.blocks.routing import CrossConnection, CrossPrediction, GateBank
from moa_core.cli import main
from moa_core.data import labelled_splits, load_dataset
from moa_core.image_input import (
    ImageInputError,
    drawing_to_input,
    has_dark_background,
    read_image,
    to_model_input,
)
from moa_core.metrics import dead_gate_fraction
from moa_core.models import ConfigError, build_model, config_class
from moa_core.models.multipath import gate_regularization, parameter_count
from moa_core.train.run import train_model
from moa_core.viz.routing import (
    class_gate_histograms,
    edge_width,
    gate_response_figure,
    path_weight_histograms,
    routing_diagram,
)


def seeded(seed: int = 0) -> None:
    torch.manual_seed(seed)


@pytest.mark.parametrize("shape", [(5, 3, 4, 6, 6), (5, 3, 7)], ids=["conv", "dense"])
def test_cross_connection_is_the_gate_weighted_sum_of_its_inputs(shape) -> None:
    seeded()
    layer = CrossConnection("cc", inputs=3, outputs=2, channels=shape[2], hidden=4)
    x = torch.randn(shape)
    y, routing = layer(x)
    g = routing.gates
    for b in range(shape[0]):
        for j in range(2):
            explicit = sum(g[b, i, j] * x[b, i] for i in range(3))
            torch.testing.assert_close(y[b, j], explicit)
    assert y.shape == (shape[0], 2, *shape[2:])


def test_cross_prediction_conv_is_relu_of_gated_predictions() -> None:
    seeded()
    m, n, cin, cout = 2, 3, 4, 5
    layer = CrossPrediction("cp", m, n, cin, cout, hidden=4, conv=True)
    x = torch.randn(2, m, cin, 6, 6)
    y, routing = layer(x)
    weight = layer.predict.weight.view(m, n, cout, cin, 3, 3)
    bias = layer.predict.bias.view(m, n, cout)
    for j in range(n):
        total = 0
        for i in range(m):
            u_ij = F.conv2d(x[:, i], weight[i, j], bias[i, j], padding=1)  # W_ij X_i + b_ij
            total = total + routing.gates[:, i, j, None, None, None] * u_ij
        torch.testing.assert_close(y[:, j], F.relu(total), rtol=1e-4, atol=1e-5)


def test_cross_prediction_dense_is_relu_of_gated_predictions() -> None:
    seeded()
    layer = CrossPrediction("cp", 2, 2, 6, 3, hidden=4, conv=False)
    x = torch.randn(4, 2, 6)
    y, routing = layer(x)
    for j in range(2):
        total = sum(
            routing.gates[:, i, j, None] * (x[:, i] @ layer.weight[i, j] + layer.bias[i, j])
            for i in range(2)
        )
        torch.testing.assert_close(y[:, j], F.relu(total))


def test_gates_sum_to_one_per_input_and_scores_are_pre_softmax() -> None:
    seeded()
    layer = CrossConnection("cc", inputs=2, outputs=3, channels=4, hidden=4)
    _, routing = layer(torch.randn(6, 2, 4, 5, 5))
    torch.testing.assert_close(routing.gates.sum(-1), torch.ones(6, 2))
    torch.testing.assert_close(routing.gates, routing.scores.softmax(-1))
    assert routing.input_strength.shape == (6, 2) and routing.output_strength.shape == (6, 3)


def test_gate_scores_follow_eq_3_4_on_the_pooled_input() -> None:
    seeded()
    bank = GateBank(inputs=2, channels=3, outputs=2, hidden=4)
    x = torch.randn(5, 2, 3, 4, 4)
    z = x.mean((3, 4))
    for i in range(2):
        hidden = F.relu(z[:, i] @ bank.w1[i] + bank.b1[i])
        torch.testing.assert_close(bank(x)[:, i], hidden @ bank.w2[i] + bank.b2[i])


def test_gradients_reach_the_gate_weights_and_match_finite_differences() -> None:
    """Paper 003, Eq. 3.10–3.15 are autograd's job: check it against finite differences."""
    seeded()
    layer = CrossConnection("cc", inputs=2, outputs=2, channels=3, hidden=2).double()
    x = torch.randn(3, 2, 3, dtype=torch.double, requires_grad=True)
    layer(x)[0].pow(2).sum().backward()
    assert layer.gate.w1.grad.abs().sum() > 0 and layer.gate.w2.grad.abs().sum() > 0
    names = [name for name, _ in layer.named_parameters()]

    def output(x: torch.Tensor, *weights: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(layer, dict(zip(names, weights, strict=True)), (x,))[0]

    weights = [p.detach().clone().requires_grad_(True) for p in layer.parameters()]
    assert torch.autograd.gradcheck(output, (x, *weights))


def tiny_routing_config(model_type: str, **changes):
    return config_class(model_type).from_dict({**TINY_ROUTING, **changes})


@pytest.mark.parametrize("model_type", ["multipath_cc", "multipath_cp", "singlepath"])
@pytest.mark.parametrize("size,channels", [(16, 1), (28, 1), (32, 3)])
def test_networks_classify_every_supported_size(model_type, size, channels) -> None:
    seeded()
    config = tiny_routing_config(model_type, image_size=size, in_channels=channels)
    model = build_model(config)
    out = model(torch.rand(4, channels, size, size), torch.tensor([0, 1, 2, 3]))
    assert out.class_logits.shape == (4, 10)
    torch.testing.assert_close(out.gate_probs.sum(1), torch.ones(4))
    assert torch.isfinite(out.loss) and out.loss_terms["cross_entropy"] > 0
    expected_layers = {"multipath_cc": 5, "multipath_cp": 4, "singlepath": 0}[model_type]
    assert len(out.routing) == expected_layers


def test_single_path_baseline_has_the_parameter_count_of_the_two_path_network() -> None:
    for model_type in ("singlepath", "multipath_cp"):
        config = config_class(model_type)(match="multipath_cc")
        target = parameter_count(config_class("multipath_cc")())
        built = parameter_count(config)
        assert abs(built - target) / target < 0.01, (model_type, built, target)
        assert config.match == ""  # resolved: the saved config holds the widths built
    widened = config_class("singlepath")()
    assert widened.conv_channels[0] > 16 and widened.dense_units > 64
    assert config_class("singlepath").from_dict(widened.to_dict()) == widened
    many = config_class("singlepath")(paths=8, match="multipath_cp")  # far beyond 4× widths
    target = parameter_count(config_class("multipath_cp")(paths=8))
    assert abs(parameter_count(many) - target) / target < 0.01


def test_gate_regularization_is_the_em_loss_of_the_normalized_scores() -> None:
    seeded()
    regularized = build_model(tiny_routing_config("multipath_cc"))
    plain = build_model(tiny_routing_config("multipath_cc", gate_reg=0.0))
    x, y = torch.rand(32, 1, 16, 16), torch.randint(0, 10, (32,))
    out = regularized(x, y)
    terms = out.loss_terms
    torch.testing.assert_close(out.loss, terms["cross_entropy"] + 0.01 * terms["gate_em"])
    assert terms["gate_em"] > 0
    # Normalized gates: every score column has batch mean 0 (paper 004, Eq. 2) in training.
    scores = out.routing[1].scores
    torch.testing.assert_close(scores.mean(0), torch.zeros_like(scores[0]), atol=1e-5, rtol=0)
    # gate_reg=0 is the paper's plain routing: softmax of unnormalized scores.
    assert plain(x, y).routing[1].scores.mean(0).abs().max() > 1e-3
    assert gate_regularization(out.routing[:0]) == 0


def test_bad_routing_settings_are_one_line_config_errors() -> None:
    for bad in ({"paths": 0}, {"gate_reg": -1.0}, {"gate_norm": "maybe"}, {"match": "moa"}):
        with pytest.raises(ConfigError):
            config_class("multipath_cc").from_dict(bad)
    with pytest.raises(ConfigError, match="at least 8 pixels"):
        config_class("multipath_cc").from_dict({"image_size": 4})


def test_training_reaches_high_test_accuracy_on_held_out_digits() -> None:
    run = train_model(
        "multipath_cc",
        "digits",
        {**TINY_ROUTING, "epochs": 6, "batch_size": 32, "device": "cpu", "lr": 3e-3},
    )
    metrics = run.result.metrics
    assert metrics["accuracy"] > 0.8  # chance is 0.1; scored on digits it never trained on
    assert 0.0 <= metrics["dead_gate_fraction"] <= 1.0
    assert run.result.history[-1]["metrics"]["accuracy"] == pytest.approx(metrics["accuracy"])


def test_digits_hold_out_a_fixed_fifth_for_classifiers() -> None:
    train0, test0 = labelled_splits("digits", seed=0)
    train1, test1 = labelled_splits("digits", limit=500, seed=1)
    whole = load_dataset("digits")
    assert len(train0) + len(test0) == len(whole)
    assert torch.equal(test0.x, test1.x) and len(train1) == 500
    train_rows = {tuple(row) for row in train0.x.flatten(1).tolist()}
    assert not any(tuple(row) in train_rows for row in test0.x.flatten(1).tolist())
    assert test0.class_names == [str(d) for d in range(10)]


def test_dead_gate_fraction_counts_gates_that_never_cross_0_1_or_0_9() -> None:
    layer = np.array(
        [
            [[0.05, 0.95], [0.5, 0.5]],
            [[0.08, 0.92], [0.2, 0.8]],
        ]
    )  # [N=2, m=2, n=2]: input 1's gates are dead, input 2's are not
    assert dead_gate_fraction([layer]) == 0.5
    assert dead_gate_fraction([]) is None


def views_for(model_type: str, images: int = 2) -> list[list[LayerView]]:
    seeded()
    model = build_model(tiny_routing_config(model_type))
    return routing_views(model, torch.rand(images, 1, 16, 16))


def test_routing_views_hold_relative_strengths_per_image() -> None:
    views = views_for("multipath_cc", images=3)
    assert len(views) == 3 and len(views[0]) == 5
    for layer in views[1]:
        assert layer.input_strength.sum() == pytest.approx(1.0, abs=1e-5)
        assert layer.output_strength.sum() == pytest.approx(1.0, abs=1e-5)
        np.testing.assert_allclose(layer.gates.sum(1), 1.0, rtol=1e-5)


def test_diagram_draws_one_edge_per_gate_with_width_growing_with_the_gate() -> None:
    layers = views_for("multipath_cc")[0]
    fig = routing_diagram(layers)
    edges = [trace for trace in fig.data if trace.name == "gate"]
    assert len(edges) == sum(layer.gates.size for layer in layers)  # 2 + 4 × 4 = 18
    by_value = sorted((trace.customdata[0][0], trace.line.width) for trace in edges)
    widths = [width for _, width in by_value]
    assert widths == sorted(widths) and widths[0] < widths[-1]
    assert edge_width(0.0) < edge_width(0.5) < edge_width(1.0)
    hover = [trace for trace in fig.data if trace.name == "gate value"]
    assert "g11" in hover[0].hovertext[0]


def test_a_mixture_is_drawn_as_one_gate_from_the_input_to_its_experts() -> None:
    seeded()
    model = build_model(config_class("moa_plus").from_dict({"num_clusters": 4}))
    (layers,) = routing_views(model, torch.rand(1, 1, 16, 16))
    assert len(layers) == 1 and layers[0].gates.shape == (1, 4)
    edges = [t for t in routing_diagram(layers).data if t.name == "gate"]
    assert len(edges) == 4
    # Its outputs are listed once for maximization, not again as a gate vector.
    assert [c.label for c in unit_choices(model, torch.rand(2, 1, 16, 16))] == [OUTPUT_UNITS]


def test_every_gate_vector_is_a_set_of_units_to_maximize() -> None:
    seeded()
    model = build_model(tiny_routing_config("multipath_cc")).eval()
    x = torch.rand(6, 1, 16, 16)
    vectors = gate_vectors(model, x)
    assert len(vectors) == 9  # 1 connector input + 4 layers × 2 inputs
    choices = unit_choices(model, x)
    assert len(choices) == 10
    scores = choices[3].score_fn(x)
    vector = choices[3].vector
    torch.testing.assert_close(scores, model(x).routing[vector.layer].scores[:, vector.source])
    assert choices[3].row_name(1) == f"g{vector.source + 1}2 of {vector.layer_name}"


def test_class_histograms_and_skewed_gate_come_from_the_gate_values() -> None:
    model = build_model(tiny_routing_config("multipath_cc"))
    vectors = gate_vectors(model, torch.rand(2, 1, 16, 16))
    assert len(all_gates(vectors)) == 18
    values = [np.array([[[0.9, 0.1]], [[0.8, 0.2]], [[0.3, 0.7]]])]  # layer 0: [N=3, m=1, n=2]
    first_two = [Gate(vectors[0], 0), Gate(vectors[0], 1)]
    per_class = class_gate_values(values, np.array([0, 0, 1]), {0: "zero", 1: "one"}, first_two)
    np.testing.assert_allclose(per_class[first_two[0].label]["zero"], [0.9, 0.8])
    np.testing.assert_allclose(per_class[first_two[1].label]["one"], [0.7])
    assert most_skewed_gate(values, first_two) == first_two[1]  # its largest value is 0.7
    fig = class_gate_histograms(per_class)
    assert len(fig.data) == 4 and {t.name for t in fig.data} == {"class zero", "class one"}


def test_weight_and_response_figures_have_one_trace_per_path_and_run() -> None:
    model = build_model(tiny_routing_config("multipath_cp"))
    layers = model.parallel_layers()
    name, weights = next(iter(layers.items()))
    assert weights.shape[0] == 2
    assert len(path_weight_histograms(weights.numpy(), name).data) == 2
    fig = gate_response_figure({"with": np.full(5, 0.6), "without": np.full(5, 0.2)}, "g11")
    assert [t.name for t in fig.data] == ["with", "without"]


def png_bytes(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def test_a_wrong_size_colour_photo_becomes_one_dark_background_digit() -> None:
    photo = Image.new("RGB", (60, 40), (250, 250, 250))  # light paper, wide, colour
    photo.paste((10, 10, 200), (25, 5, 35, 35))  # a dark blue stroke
    image = read_image("photo.jpg", png_bytes(photo, "JPEG"))
    x = to_model_input(image, channels=1, size=16, dark_background=True)
    assert x.shape == (1, 16, 16) and x.dtype == np.float32
    assert x[0, 0, 0] < 0.1 and x[0, 8, 8] > 0.5  # inverted: dark paper, bright stroke


def test_transparency_around_dark_ink_is_flattened_onto_white() -> None:
    rgba = Image.new("RGBA", (20, 20), (0, 0, 0, 0))
    rgba.paste((0, 0, 0, 255), (5, 5, 15, 15))  # an opaque black square in the middle
    x = to_model_input(rgba, channels=3, size=8, dark_background=False)
    assert x.shape == (3, 8, 8) and x[:, 0].min() == pytest.approx(1.0)  # white edge rows
    assert x[:, 3:5, 3:5].max() == pytest.approx(0.0)  # the ink stays black


@pytest.mark.parametrize("data", [b"", b"%PDF-1.4 not an image", json.dumps({}).encode()])
def test_non_images_are_one_line_errors(data: bytes) -> None:
    with pytest.raises(ImageInputError) as err:
        read_image("notes.pdf", data)
    assert "notes.pdf" in str(err.value) and "\n" not in str(err.value)


def test_a_blank_drawing_is_no_input_and_a_stroke_is_one() -> None:
    canvas = np.zeros((90, 90, 4), np.uint8)
    assert drawing_to_input(canvas, 1, 16) is None
    canvas[20:70, 40:50] = 255
    x = drawing_to_input(canvas, 1, 16)
    assert x.shape == (1, 16, 16) and x.max() > 0.5 and x[0, 0, 0] == 0


def test_cli_reports_test_accuracy_and_dead_gates(tmp_path, capsys) -> None:
    out = tmp_path / "run.safetensors"
    settings = [f"{k}={json.dumps(v)}" for k, v in TINY_ROUTING.items()]
    args = ["train", "multipath_cc", "--dataset", "digits", "--epochs", "1", "--out", str(out)]
    assert main([*args, "--set", *settings, "gate_reg=0", "max_samples=300"]) == 0
    line = json.loads(capsys.readouterr().out)
    assert 0.0 <= line["accuracy"] <= 1.0 and 0.0 <= line["dead_gate_fraction"] <= 1.0
    assert "nmi" not in line
    assert main(["eval", str(out), "--split", "test"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["accuracy"] == pytest.approx(line["accuracy"], abs=1e-4)


def test_train_and_test_number_their_classes_alike_even_when_a_sample_misses_some() -> None:
    train, test = labelled_splits("digits", limit=12, seed=0)
    assert len(set(train.y.tolist())) < 10  # 12 samples miss some digits
    for side in (train, test):
        assert torch.equal(side.class_indices(), side.y)  # digit d is class d on both sides
    pair_train, pair_test = labelled_splits("digits:3,5")
    assert (
        set(pair_train.class_indices().tolist())
        == {0, 1}
        == set(pair_test.class_indices().tolist())
    )


def test_a_classifier_gets_one_output_per_class_of_the_spec() -> None:
    from moa_core.train.run import prepare

    model, config, *_ = prepare("multipath_cc", "digits:3,5", {**TINY_ROUTING, "max_samples": 40})
    assert config.num_classes == 2
    with pytest.raises(ConfigError, match="at least 2 classes"):
        prepare("multipath_cc", "digits:3", TINY_ROUTING)
    with pytest.raises(ConfigError, match="paths must be ≥ 2"):
        config_class("multipath_cp").from_dict({"paths": 1})


def test_sixteen_bit_and_oversized_images_are_handled() -> None:
    deep = np.full((30, 30), 50_000, np.uint16)
    deep[5:25, 12:18] = 8_000  # dark stroke on light 16-bit paper
    image = Image.fromarray(deep)  # mode I;16
    x = to_model_input(read_image("scan.png", png_bytes(image)), 1, 16, dark_background=True)
    assert x[0, 0, 0] < 0.1 and x[0, 8, 8] > 0.5  # contrast kept, then inverted
    header_only = png_bytes(Image.new("L", (1, 1)))
    # A PNG whose header claims 20000×20000 pixels: Pillow's bomb guard, as one line.
    bomb = header_only[:16] + (20000).to_bytes(4, "big") * 2 + header_only[24:]
    with pytest.raises(ImageInputError, match="bomb.png"):
        read_image("bomb.png", bomb)


def test_uploads_are_inverted_only_for_dark_background_grayscale_sets() -> None:
    digits = load_dataset("digits").x[:256].numpy()
    assert has_dark_background(digits)  # light strokes on black, like MNIST and USPS
    assert not has_dark_background(1.0 - digits)  # dark strokes on white paper
    colour = np.random.default_rng(0).random((8, 3, 32, 32)).astype(np.float32) * 0.2
    assert not has_dark_background(colour)  # a colour set's photos are never inverted
    names = load_dataset("digits:3,5").names_by_label
    assert names == {3: "3", 5: "5"}
