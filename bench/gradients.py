"""``python -m bench.gradients``: each gradient method through the builder's graph in onnxruntime
(service.attribution.any_model) against Captum on the PyTorch original, in one process, same thread count on both
sides (``torch.set_num_threads``, onnxruntime's intra-op threads), alternating rounds, the median of the rounds'
ratios. Models: torchvision resnet18 (random weights) at 224x224, 1 and 16 images; the shipped MNIST example
(examples/models/mnist-cnn.onnx with its PyTorch source), 1 and 16 images. Graphs, sessions and Captum objects are
made before timing; a round times one call of each side. Prints a Markdown table and writes
bench/results/gradients.json.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torchvision
from captum.attr import GuidedBackprop, InputXGradient, IntegratedGradients, LayerGradCam, Saliency

from bench.results import RESULTS, machine, say, write_results
from service.attribution import any_model
from service.graphs.gradient_builder import gradient_graph

ROOT = Path(__file__).resolve().parents[1]
STEPS, SAMPLES = 16, 8  # integrated gradients' path points, SmoothGrad's noisy copies


def mnist_example() -> tuple[torch.nn.Module, onnx.ModelProto]:
    """examples/train_mnist_cnn.py's network with the shipped file's weights, and the file."""
    spec = importlib.util.spec_from_file_location("train_mnist_cnn", ROOT / "examples" / "train_mnist_cnn.py")
    source = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(source)
    proto = onnx.load(str(ROOT / "examples" / "models" / "mnist-cnn.onnx"))
    model = source.MnistCnn()
    state = {init.name: torch.from_numpy(onnx.numpy_helper.to_array(init).copy()) for init in proto.graph.initializer}
    model.load_state_dict(state, strict=False)
    return model.eval(), proto


def resnet18(side: int) -> tuple[torch.nn.Module, onnx.ModelProto]:
    """torchvision resnet18, random weights (seed 0), exported at ``side`` as the importer tests export it."""
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None).eval()
    buffer = io.BytesIO()
    torch.onnx.export(
        model,
        (torch.zeros(1, 3, side, side),),
        buffer,
        dynamo=False,
        input_names=["input"],
        output_names=["logits"],
        dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}},
        opset_version=17,
    )
    return model, onnx.load_from_string(buffer.getvalue())


def pairs(
    model: torch.nn.Module, proto: onnx.ModelProto, layer_module: str, threads: int
) -> dict[str, tuple[Callable, Callable]]:
    """Per method: (builder side, Captum side), each a function of (images, targets)."""
    layer = tensor_of(proto, layer_module)
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    exact = any_model.GradientRunner(gradient_graph(proto, "logits", ["input"]), "input", options)
    cam = any_model.GradientRunner(gradient_graph(proto, "logits", [layer], outputs=[layer]), "input", options)
    guided = any_model.GradientRunner(gradient_graph(proto, "logits", ["input"], rules="guided"), "input", options)
    classes = model(torch.zeros(1, *proto_input_shape(proto))).shape[1]
    noise_of: dict[tuple, np.ndarray] = {}

    def noise(shape: tuple) -> np.ndarray:
        return noise_of.setdefault(
            shape, np.random.default_rng(0).normal(0, 0.15, (SAMPLES, *shape[1:])).astype(np.float32)
        )

    def seeds(t: np.ndarray) -> np.ndarray:
        return any_model.one_hot(t, classes)

    def captum(attribution, *args, **kwargs) -> Callable:
        method = attribution(model, *args)
        return lambda x, t: method.attribute(torch.from_numpy(x), target=torch.from_numpy(t), **kwargs).detach()

    saliency = Saliency(model)

    def captum_smoothgrad(x: np.ndarray, t: np.ndarray) -> torch.Tensor:
        target = torch.from_numpy(t)
        maps = [saliency.attribute(torch.from_numpy(x + f), target=target, abs=False) for f in noise(x.shape)]
        return torch.stack(maps).mean(0)

    return {
        "saliency": (lambda x, t: any_model.saliency(exact, x, seeds(t)), captum(Saliency, abs=False)),
        "gradient × input": (lambda x, t: any_model.gradient_x_input(exact, x, seeds(t)), captum(InputXGradient)),
        f"integrated gradients ({STEPS} steps)": (
            lambda x, t: any_model.integrated_gradients(exact, x, seeds(t), STEPS),
            captum(IntegratedGradients, n_steps=STEPS, method="riemann_trapezoid", internal_batch_size=64),
        ),
        f"SmoothGrad ({SAMPLES} samples)": (
            lambda x, t: any_model.smoothgrad(exact, x, seeds(t), noise(x.shape)),
            captum_smoothgrad,
        ),
        "guided backprop": (lambda x, t: guided.gradient(x, seeds(t)), captum(GuidedBackprop)),
        f"Grad-CAM ({layer_module})": (
            lambda x, t: any_model.grad_cam(cam, x, seeds(t), layer),
            captum(LayerGradCam, model.get_submodule(layer_module), relu_attributions=True),
        ),
    }


def tensor_of(proto: onnx.ModelProto, module_path: str) -> str:
    """The ONNX tensor a module's output became: the last node torch.onnx.export named under its path."""
    scopes: list[str] = []
    for part in module_path.split("."):  # a Sequential's numbered child is scoped "<parent>.<index>"
        scopes.append(f"{scopes[-1]}.{part}" if part.isdigit() and scopes else part)
    prefix = "/" + "/".join(scopes) + "/"
    return [node for node in proto.graph.node if node.name.startswith(prefix)][-1].output[0]


def proto_input_shape(proto: onnx.ModelProto) -> list[int]:
    return [d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim[1:]]


def timed(function: Callable, *args) -> float:
    started = time.perf_counter()
    function(*args)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS / "gradients.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    models = {
        "resnet18 224×224": (*resnet18(224), "layer4", (1, 16)),
        "MNIST example": (*mnist_example(), "features.10", (1, 16)),
    }
    rows = []
    print("| model | method | images | builder + onnxruntime (ms) | Captum (ms) | builder ÷ Captum |")
    print("|---|---|---:|---:|---:|---:|")
    for model_name, (model, proto, layer_module, batches) in models.items():
        methods = pairs(model, proto, layer_module, args.threads)
        for images in batches:
            rng = np.random.default_rng(1)
            x = rng.normal(size=(images, *proto_input_shape(proto))).astype(np.float32)
            t = rng.integers(0, 10, images)
            for method, (builder, captum) in methods.items():
                builder(x, t), captum(x, t)  # warm-up
                ours, theirs = [], []
                for _ in range(args.rounds):
                    ours.append(timed(builder, x, t))
                    theirs.append(timed(captum, x, t))
                ratio = statistics.median(a / b for a, b in zip(ours, theirs, strict=True))
                row = {
                    "model": model_name,
                    "method": method,
                    "images": images,
                    "builder_ms": 1000 * statistics.median(ours),
                    "captum_ms": 1000 * statistics.median(theirs),
                    "ratio": ratio,
                }
                rows.append(row)
                say(f"{model_name} {method} {images}: {ratio:.2f}")
                print(
                    f"| {model_name} | {method} | {images} | {row['builder_ms']:.1f} | {row['captum_ms']:.1f} "
                    f"| {ratio:.2f} |",
                    flush=True,
                )
    write_results(
        args.out,
        {
            "machine": machine(),
            "threads": args.threads,
            "rounds": args.rounds,
            "steps": STEPS,
            "samples": SAMPLES,
            "rows": rows,
        },
    )


if __name__ == "__main__":
    main()
