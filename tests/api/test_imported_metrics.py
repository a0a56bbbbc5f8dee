"""Quality metrics of an imported model's maps on /v1/attribution/{method}?model=NAME&metrics over HTTP, on the
real app with the shipped example imported (examples/models/mnist-cnn.onnx, MNIST normalisation): each metric
against Quantus 0.6.0 (or a brute-force loop in PyTorch) on the example's PyTorch original fed the input the
service prepared from the upload, the service's seeded draws handed to Quantus (which draws from numpy's global
generator); the controls of the sanity checks; the batch route against the single one; costs and refusals."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import onnx
import pytest
import quantus
import torch
from captum.attr import Saliency
from quantus.functions.perturb_func import noisy_linear_imputation
from quantus.helpers.model.pytorch_model import PyTorchModel
from skimage.metrics import structural_similarity

from service.contract import IMPORTED_DIR
from service.images.preprocessing import upload_input
from service.importer import main
from service.quality import randomisation
from service.quality.callables import normalised_by_max
from service.quality.faithfulness_correlation import draw_subsets
from service.quality.max_sensitivity import draw_noise
from service.quality.report import MetricLimits, measure
from service.quality.road import NOISE, PERCENTAGES
from service.studies.imported_quality import imported_subject
from tests.api.test_imported_gradients import EXAMPLE, SUBJECTS, manifest_of
from tests.graphs.test_against_captum_torchvision import mnist_example
from tests.helpers import link_shipped_models
from tests.importer.over_http import npy_body, serving

NAME = "mnist-cnn"
RELATIVE = 1e-4
SAMPLES, RADIUS = 10, 0.2
RUNS, SUBSET = 50, 78
STEPS = 32


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    models = link_shipped_models(tmp_path_factory.mktemp("metrics") / "models")
    assert main([str(EXAMPLE), "--name", NAME, "--preprocess", "mnist", "--models-dir", str(models)]) == 0
    return models


@pytest.fixture(scope="module")
def client(models):
    with serving(models) as test_client:
        yield test_client


class Example:
    """The upload's input as the service prepares it (1, 1, 28, 28), the example's normalised black and 1 / std,
    its PyTorch original and its exposed ONNX copy (what the sanity checks randomise)."""

    def __init__(self, models: Path) -> None:
        manifest = manifest_of(models, NAME)
        upload = SUBJECTS[NAME].upload
        self.image = upload_input(upload, manifest, max_pixels=10**6).reshape(1, 1, 28, 28).astype(np.float32)
        mean, std = manifest.preprocessing.mean[0], manifest.preprocessing.std[0]
        self.black, self.unit = float(-mean / std), 1 / std
        self.model = mnist_example()
        self.graph = onnx.load(str(models / IMPORTED_DIR / NAME / manifest.exposed.file))

    def logits(self, images: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return self.model(torch.from_numpy(np.asarray(images, np.float32).reshape(-1, 1, 28, 28))).numpy()


@pytest.fixture(scope="module")
def example(models) -> Example:
    return Example(models)


def ask(client, method: str, metrics: str, model: str = NAME, **params) -> dict:
    """The JSON answer of ``method`` with ``metrics`` for ``model``'s subject image (a 200 asserted)."""
    response = client.post(
        f"/v1/attribution/{method}",
        params={"model": model, "format": "json", "metrics": metrics, **params},
        content=SUBJECTS[model].upload,
        headers={"content-type": "image/png"},
    )
    assert response.status_code == 200, response.text
    return response.json()


def map_of(answer: dict) -> np.ndarray:
    """The answer's map as Quantus takes it, (1, 1, 28, 28)."""
    return np.array(answer["values"], np.float64).reshape(1, 1, 28, 28)


def torch_saliency(model, inputs, targets, **kwargs) -> np.ndarray:
    """Quantus's explain_func: Captum's Saliency (abs=False) of the PyTorch original."""
    x = torch.as_tensor(np.asarray(inputs, np.float32).reshape(-1, 1, 28, 28))
    target = torch.as_tensor(np.asarray(targets), dtype=torch.long)
    return Saliency(model).attribute(x, target=target, abs=False).detach().numpy()


def test_metrics_all_answers_every_metric_but_the_completeness_gap_for_saliency(client):
    metrics = ask(client, "saliency", "all")["metrics"]
    assert metrics["completeness_gap"] is None
    assert set(metrics["sanity"]) == {"passes", "parameter_randomization", "random_logit"}


def test_sparseness_equals_quantus_up_to_its_epsilon(client, example):
    answer = ask(client, "saliency", "sparseness")
    expected = quantus.Sparseness(disable_warnings=True)(
        model=None, x_batch=example.image, y_batch=np.array([answer["target"]]), a_batch=map_of(answer)
    )
    assert answer["metrics"]["sparseness"] == pytest.approx(expected[0], abs=1e-4)


def test_effective_complexity_equals_quantus(client, example):
    answer = ask(client, "saliency", "effective_complexity")
    expected = quantus.EffectiveComplexity(disable_warnings=True)(
        model=None, x_batch=example.image, y_batch=np.array([answer["target"]]), a_batch=map_of(answer)
    )
    assert abs(answer["metrics"]["effective_complexity"] - expected[0]) <= 1  # float32 rounding at eps, as shipped


def test_faithfulness_correlation_equals_quantus_over_the_same_subsets_set_to_the_normalised_black(
    client, example, monkeypatch
):
    answer = ask(client, "saliency", "faithfulness_correlation")
    subsets = iter(draw_subsets(784, RUNS, SUBSET, 0))
    monkeypatch.setattr(np.random, "choice", lambda *args, **kwargs: next(subsets))
    expected = quantus.FaithfulnessCorrelation(
        nr_runs=RUNS, subset_size=SUBSET, perturb_baseline=example.black, disable_warnings=True
    )(
        model=example.model,
        x_batch=example.image,
        y_batch=np.array([answer["target"]]),
        a_batch=map_of(answer),
        batch_size=1,
    )
    assert answer["metrics"]["faithfulness_correlation"] == pytest.approx(expected[0], abs=RELATIVE)


def test_max_sensitivity_equals_quantus_with_the_noise_scaled_by_one_over_std(client, example):
    """The service's noise (uniform in ±0.2 pixel units, times 1/std in the normalised input) handed to Quantus's
    MaxSensitivity; the paper's undivided form (Quantus's norm_denominator set to 1)."""
    answer = ask(client, "saliency", "max_sensitivity")
    noise = iter(draw_noise((1, 1, 28, 28), SAMPLES, RADIUS, 0, np.array([example.unit])))

    def same_noise(arr: np.ndarray, **kwargs) -> np.ndarray:
        return arr + next(noise).reshape(arr.shape)

    expected = quantus.MaxSensitivity(
        nr_samples=SAMPLES, perturb_func=same_noise, norm_denominator=lambda a: np.ones(len(a)), disable_warnings=True
    )(
        model=example.model,
        x_batch=example.image,
        y_batch=np.array([answer["target"]]),
        a_batch=map_of(answer),
        explain_func=torch_saliency,
        batch_size=1,
    )
    assert answer["metrics"]["max_sensitivity"] == pytest.approx(expected[0], rel=RELATIVE)


@pytest.mark.parametrize("most_relevant_first", [True, False], ids=["morf", "lerf"])
def test_road_equals_quantus_road_with_the_same_imputation_noise(client, example, most_relevant_first):
    """Quantus's noisy linear imputation, its noise replaced by the service's seeded draws (0.01 pixel units times
    1/std); Quantus ranks most relevant first, least relevant first is its ROAD on the negated map."""
    name = "road_morf" if most_relevant_first else "road_lerf"
    answer = ask(client, "saliency", name)
    rng = np.random.default_rng(0)

    def same_noise(arr: np.ndarray, indices: np.ndarray, **kwargs) -> np.ndarray:
        imputed = noisy_linear_imputation(arr, indices, noise=0.0)
        flat = imputed.reshape(arr.shape[0], -1)
        flat[:, indices] += NOISE * rng.standard_normal((arr.shape[0], len(indices))) * example.unit
        return flat.reshape(arr.shape)

    ranked = map_of(answer) if most_relevant_first else -map_of(answer)
    expected = quantus.ROAD(percentages=list(PERCENTAGES), perturb_func=same_noise, disable_warnings=True)(
        model=example.model,
        x_batch=example.image,
        y_batch=np.array([answer["target"]]),
        a_batch=ranked,
        batch_size=1,
    )
    assert answer["metrics"][name]["correct"] == [bool(expected[p]) for p in PERCENTAGES]


def test_completeness_gap_is_the_map_sum_minus_the_torch_logit_change_from_the_normalised_black(client, example):
    answer = ask(client, "integrated-gradients", "completeness_gap", steps=16)
    logits = example.logits(np.concatenate([example.image, np.full_like(example.image, example.black)]))
    change = logits[0, answer["target"]] - logits[1, answer["target"]]
    expected = map_of(answer).sum() - change
    assert answer["metrics"]["completeness_gap"] == pytest.approx(float(expected), abs=RELATIVE * float(abs(change)))


def brute_force_curves(example: Example, order: np.ndarray, target: int) -> tuple[float, float]:
    """The deletion and insertion areas of pixels taken in ``order``, one PyTorch run per step: deleted pixels
    become the normalised black, inserted ones are copied onto the all-black input; softmax of the target."""
    counts = np.round(np.linspace(0, 784, STEPS + 1)).astype(int)
    image = example.image.reshape(784)
    deletion, insertion = [], []
    for count in counts:
        moved = order[:count]
        deleted, inserted = image.copy(), np.full(784, example.black, np.float32)
        deleted[moved], inserted[moved] = example.black, image[moved]
        for curve, x in ((deletion, deleted), (insertion, inserted)):
            curve.append(torch.softmax(torch.from_numpy(example.logits(x)), 1)[0, target].item())
    fractions = np.linspace(0, 1, STEPS + 1)
    return float(np.trapezoid(deletion, fractions)), float(np.trapezoid(insertion, fractions))


def test_deletion_and_insertion_equal_a_brute_force_loop_in_torch(client, example):
    answer = ask(client, "saliency", "deletion,insertion")
    magnitude = np.abs(map_of(answer).reshape(784))
    order = np.argsort(-magnitude.astype(np.float32), kind="stable")
    random_order = np.argsort(np.random.default_rng(0).random((1, 784)), axis=1)[0]
    deletion, insertion = brute_force_curves(example, order, answer["target"])
    random_deletion, random_insertion = brute_force_curves(example, random_order, answer["target"])
    metrics = answer["metrics"]
    assert metrics["deletion"]["area"] == pytest.approx(deletion, abs=RELATIVE)
    assert metrics["insertion"]["area"] == pytest.approx(insertion, abs=RELATIVE)
    assert metrics["deletion"]["random_area"] == pytest.approx(random_deletion, abs=RELATIVE)
    assert metrics["insertion"]["random_area"] == pytest.approx(random_insertion, abs=RELATIVE)


def test_random_logit_is_the_2d_ssim_of_the_normalised_maps_of_the_two_classes(client):
    answer = ask(client, "saliency", "sanity")
    other = answer["metrics"]["sanity"]["random_logit"]["other_class"]
    assert other == randomisation.other_classes(np.array([answer["target"]]), 10, 0)[0]
    other_map = np.array(ask(client, "saliency", "sparseness", target=other)["values"], np.float64)[0]
    a, b = normalised_by_max(map_of(answer)[:, 0])[0], normalised_by_max(other_map[None])[0]
    span = float(max(a.max(), b.max()) - min(a.min(), b.min()))
    expected = structural_similarity(a, b, data_range=span)
    assert answer["metrics"]["sanity"]["random_logit"]["ssim"] == pytest.approx(expected, abs=1e-9)


def torch_copy(graph: onnx.ModelProto) -> torch.nn.Module:
    """The example's PyTorch network holding the weights of an ONNX copy of it."""
    model = mnist_example()
    state = {i.name: torch.from_numpy(onnx.numpy_helper.to_array(i).copy()) for i in graph.graph.initializer}
    model.load_state_dict(state, strict=False)
    return model.eval()


def test_parameter_randomisation_equals_quantus_mprt_for_the_same_redrawn_layers(client, example, monkeypatch):
    """Quantus's layer generator is given the PyTorch original holding each step's re-drawn weights (the exposed
    copy's, seed 0, last layer first). Spearman to 1e-3: the ranks of two runtimes' float32 gradients may swap
    where two pixels' values are within rounding of each other."""
    answer = ask(client, "saliency", "sanity")
    steps = randomisation.cascade_steps(example.graph, MetricLimits().sanity_steps)
    copies = [(name, torch_copy(randomisation.randomised(example.graph, layers, 0))) for name, layers in steps]
    monkeypatch.setattr(PyTorchModel, "get_random_layer_generator", lambda self, order="top_down", seed=42: copies)
    monkeypatch.setattr(PyTorchModel, "random_layer_generator_length", property(lambda self: len(copies)))
    expected = quantus.MPRT(disable_warnings=True)(
        model=example.model,
        x_batch=example.image,
        y_batch=np.array([answer["target"]]),
        a_batch=map_of(answer),
        explain_func=torch_saliency,
        batch_size=1,
    )
    similarity = answer["metrics"]["sanity"]["parameter_randomization"]["similarity"]
    assert [step["layer"] for step in similarity] == [name for name, _ in steps]
    for step in similarity:
        assert step["spearman"] == pytest.approx(expected[step["layer"]][0], abs=1e-3)


def constant(images: np.ndarray, targets: np.ndarray) -> np.ndarray:
    return np.ones((len(images), *np.shape(images)[-2:]))


def edges(images: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """The gradient magnitude of the image itself: an edge detector, blind to the model and the target."""
    rows, cols = np.gradient(np.asarray(images, np.float64)[:, 0], axis=(1, 2))
    return np.hypot(rows, cols)


def sanity_of(client, explain=None) -> dict:
    """The sanity checks of the example's saliency map of the upload through ``imported_quality``'s Subject on the
    served model, the map and the method replaced by ``explain`` when given (over every randomised copy too)."""
    from service.studies.any_model_explain import explain_any
    from service.studies.imported_quality import exposed_graph

    model = client.app.state.registry.imported[NAME]
    image = upload_input(SUBJECTS[NAME].upload, model.manifest, max_pixels=10**6)
    explanation = explain_any(model, image, "saliency")
    subject = imported_subject(model, image, explanation, graph=exposed_graph(model))
    if explain is not None:
        subject = dataclasses.replace(
            subject,
            maps=explain(subject.images, subject.targets),
            explain=explain,
            explainer_for=lambda copy: explain,
            randomised_explainers=None,
        )
    return measure(subject, ("sanity",), MetricLimits())[0]["sanity"]


def test_saliency_of_the_trained_example_passes_both_sanity_checks(client):
    answer = sanity_of(client)
    assert answer["parameter_randomization"]["passes"] and answer["random_logit"]["passes"]


@pytest.mark.parametrize("blind", [constant, edges], ids=["constant", "edges"])
def test_a_map_blind_to_the_imported_model_fails_both_sanity_checks(client, blind):
    answer = sanity_of(client, blind)
    assert not answer["parameter_randomization"]["passes"]
    assert not answer["random_logit"]["passes"]
    assert not answer["passes"]


def test_the_fully_randomised_copy_s_saliency_differs_from_the_trained_example_s(client, example):
    answer = ask(client, "saliency", "sanity")
    layers = randomisation.cascade_steps(example.graph)[-1][1]
    randomised = torch_copy(randomisation.randomised(example.graph, layers, 0))
    other = torch_saliency(randomised, example.image, [answer["target"]])
    rank, _ = randomisation.compared(map_of(answer)[:, 0], other[:, 0], magnitudes=True)
    assert rank[0] < randomisation.SPEARMAN_THRESHOLD


def test_the_sanity_checks_give_back_the_memory_of_their_copies(client):
    model = client.app.state.registry.imported[NAME]
    ask(client, "saliency", "sparseness")
    before = model.gradient_bytes
    ask(client, "saliency", "sanity")
    assert model.gradient_bytes == before


def test_a_batch_s_metrics_equal_each_image_s_single_answer(client, example):
    answer = ask(client, "saliency", "road_morf,faithfulness_correlation,max_sensitivity,sanity")
    flipped = example.image[..., ::-1].copy()
    response = client.post(
        "/v1/attribution/saliency/batch",
        params={"model": NAME, "metrics": "road_morf,faithfulness_correlation,max_sensitivity,sanity"},
        content=npy_body(np.concatenate([example.image, flipped])),
        headers={"content-type": "application/octet-stream"},
    )
    assert response.status_code == 200, response.text
    items = response.json()["results"]
    assert items[0]["metrics"] == answer["metrics"]
    assert items[1]["metrics"]["max_sensitivity"] != pytest.approx(answer["metrics"]["max_sensitivity"])


def test_occlusion_a_forward_run_method_answers_the_sanity_checks_over_randomised_copies(client, example):
    sanity = ask(client, "occlusion", "sanity")["metrics"]["sanity"]
    steps = randomisation.cascade_steps(example.graph, MetricLimits().sanity_steps)
    assert [step["layer"] for step in sanity["parameter_randomization"]["similarity"]] == [n for n, _ in steps]


def test_the_sanity_checks_of_a_cam_whose_head_is_cut_from_the_file_are_a_422_naming_why(client):
    response = client.post(
        "/v1/attribution/eigen-cam",
        params={"model": NAME, "format": "json", "metrics": "sanity"},
        content=SUBJECTS[NAME].upload,
        headers={"content-type": "image/png"},
    )
    assert response.status_code == 422
    assert "randomised copy" in response.json()["error"]


def test_metrics_all_of_a_cam_whose_head_is_cut_from_the_file_leave_out_the_sanity_checks(client):
    metrics = ask(client, "eigen-cam", "all")["metrics"]
    assert metrics["sanity"] is None
    assert metrics["max_sensitivity"] is not None


def test_the_sanity_checks_cost_a_pass_per_cascade_step_plus_one_counted_before_any_run(models, example):
    steps = len(randomisation.cascade_steps(example.graph, 3))
    with serving(models, max_metric_work=steps, metric_sanity_steps=3) as small:
        response = small.post(
            "/v1/attribution/saliency/batch",
            params={"model": NAME, "metrics": "sanity"},
            content=npy_body(example.image),
            headers={"content-type": "application/octet-stream"},
        )
    assert steps == 3
    assert response.status_code == 413
    assert f"sanity {steps + 1}" in response.json()["error"]
