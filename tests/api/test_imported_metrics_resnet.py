"""Quality metrics of a three-channel imported model over HTTP: a torchvision resnet18 (weights=None, 64 x 64,
ImageNet normalisation, 21 parametrised layers) against its PyTorch original, the per-channel choices checked:
max-sensitivity's noise (pixel units times 1 / std of each channel) against Quantus 0.6.0, faithfulness
correlation (pixels set to each channel's normalised black in all channels) against a brute-force loop, ROAD's
imputation of a (3, H, W) image against Quantus's, and the sanity cascade grouped into CONVLENS_METRIC_SANITY_STEPS
copies."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import onnx
import pytest
import quantus
import torch
from captum.attr import Saliency
from quantus.functions.perturb_func import noisy_linear_imputation

from service.contract import IMPORTED_DIR
from service.images.preprocessing import upload_input
from service.importer import main
from service.quality import randomisation
from service.quality.faithfulness_correlation import draw_subsets
from service.quality.max_sensitivity import draw_noise
from service.quality.road import imputed
from service.quality.similarity import pearson
from tests.api.test_imported_gradients import IMAGENET_MEAN, IMAGENET_STD, SIDE, SUBJECTS, manifest_of
from tests.api.test_imported_metrics import ask as ask_model
from tests.helpers import link_shipped_models
from tests.importer.frameworks import export_torch
from tests.importer.over_http import serving

NAME = "resnet18"
RELATIVE = 1e-4
SAMPLES, RADIUS = 10, 0.2
RUNS, SUBSET = 50, 78


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("metrics-resnet")
    models = link_shipped_models(folder / "models")
    resnet = export_torch(SUBJECTS[NAME].original(), folder / "resnet18.onnx", SIDE)
    imagenet = ["--mean", ",".join(map(str, IMAGENET_MEAN)), "--std", ",".join(map(str, IMAGENET_STD))]
    assert main([str(resnet), "--name", NAME, "--resize", str(SIDE), *imagenet, "--models-dir", str(models)]) == 0
    return models


@pytest.fixture(scope="module")
def client(models):
    with serving(models) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def original(models) -> tuple[np.ndarray, torch.nn.Module]:
    """The upload's input as the service prepares it (1, 3, 64, 64) and the PyTorch original (seeded: the
    weights the imported file was exported with)."""
    manifest = manifest_of(models, NAME)
    image = upload_input(SUBJECTS[NAME].upload, manifest, max_pixels=10**6).reshape(1, 3, SIDE, SIDE)
    return image.astype(np.float32), SUBJECTS[NAME].original()


ask = partial(ask_model, model=NAME)


def channel_summed_saliency(model, inputs, targets, **kwargs) -> np.ndarray:
    """Quantus's explain_func: Captum's Saliency (abs=False), its channels summed (the service's per-pixel map)."""
    x = torch.as_tensor(np.asarray(inputs, np.float32).reshape(-1, 3, SIDE, SIDE))
    target = torch.as_tensor(np.asarray(targets), dtype=torch.long)
    return Saliency(model).attribute(x, target=target, abs=False).detach().numpy().sum(axis=1, keepdims=True)


def test_max_sensitivity_equals_quantus_with_each_channel_s_noise_scaled_by_its_one_over_std(client, original):
    image, model = original
    answer = ask(client, "saliency", "max_sensitivity")
    unit = 1 / np.asarray(IMAGENET_STD)
    noise = iter(draw_noise(image.shape, SAMPLES, RADIUS, 0, unit))

    def same_noise(arr: np.ndarray, **kwargs) -> np.ndarray:
        return arr + next(noise).reshape(arr.shape)

    expected = quantus.MaxSensitivity(
        nr_samples=SAMPLES, perturb_func=same_noise, norm_denominator=lambda a: np.ones(len(a)), disable_warnings=True
    )(
        model=model,
        x_batch=image,
        y_batch=np.array([answer["target"]]),
        a_batch=np.array(answer["pixels"], np.float64)[None, None],
        explain_func=channel_summed_saliency,
        batch_size=1,
    )
    assert answer["metrics"]["max_sensitivity"] == pytest.approx(expected[0], rel=RELATIVE)


def test_faithfulness_correlation_sets_each_subset_to_the_normalised_black_in_every_channel(client, original):
    """Bhatt et al.'s μ_F one subset at a time in PyTorch: Quantus's FaithfulnessCorrelation draws its subsets over
    the C x H x W values of a map broadcast over the channels, the service's over the H x W pixels."""
    image, model = original
    answer = ask(client, "saliency", "faithfulness_correlation")
    target, heat = answer["target"], np.array(answer["pixels"], np.float64).ravel()
    black = (-np.asarray(IMAGENET_MEAN) / np.asarray(IMAGENET_STD)).astype(np.float32)
    sums, drops = [], []
    with torch.no_grad():
        full = model(torch.from_numpy(image))[0, target].item()
        for subset in draw_subsets(SIDE * SIDE, RUNS, SUBSET, 0):
            masked = image.reshape(3, -1).copy()
            masked[:, subset] = black[:, None]
            drops.append(full - model(torch.from_numpy(masked.reshape(1, 3, SIDE, SIDE)))[0, target].item())
            sums.append(heat[subset].sum())
    expected = pearson(np.array(sums), np.array(drops))
    assert answer["metrics"]["faithfulness_correlation"] == pytest.approx(expected, abs=RELATIVE)


def test_road_imputes_every_channel_of_the_same_pixels_as_quantus_does(original):
    image = original[0][0].astype(np.float64)
    removed = np.random.default_rng(1).choice(SIDE * SIDE, 900, replace=False)
    np.random.seed(5)
    expected = noisy_linear_imputation(image, removed, noise=0.01)
    noise = 0.01 * np.random.RandomState(5).randn(3, len(removed))
    np.testing.assert_allclose(imputed(image, removed, noise), expected, atol=1e-9)


def test_the_sanity_cascade_of_21_layers_runs_in_at_most_the_setting_s_steps(client, models):
    manifest = manifest_of(models, NAME)
    graph = onnx.load(str(models / IMPORTED_DIR / NAME / manifest.exposed.file))
    assert len(randomisation.parametrised_layers(graph)) == 21
    sanity = ask(client, "saliency", "sanity")["metrics"]["sanity"]
    steps = randomisation.cascade_steps(graph, 8)
    assert [step["layer"] for step in sanity["parameter_randomization"]["similarity"]] == [n for n, _ in steps]
    assert steps[-1][1] == randomisation.parametrised_layers(graph)[::-1]
    assert sanity["parameter_randomization"]["layers"] == 21
