"""Container smoke test: build the service image from the project's own Dockerfile with podman, run it,
bring docker-compose.yml up through podman's Docker-compatible socket, play the Kubernetes Deployment with
`podman kube play`, classify a sample digit through each with curl, and remove everything it made.

Needs podman, runc, docker-compose and curl (`.ci/run` installs them; see ../shared/CONTAINERS.md). Where
podman is absent the tests skip, saying so; with REQUIRE_CONTAINER_TESTS=1 (as `.ci/run` sets) they
fail instead. The image is built once and shared by the three parts."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from tests.deploy.conftest import ROOT, Stopwatch
from tests.helpers import free_port

pytestmark = pytest.mark.containers

REQUIRED = os.environ.get("REQUIRE_CONTAINER_TESTS") == "1"
SHARED = ROOT.parent / "shared" / "containers"
BASE_IMAGE = "docker.io/library/python:3.11-slim"
DIGIT = ROOT / "examples" / "digit-7.png"
MiB = 1024 * 1024


def unavailable(reason: str) -> None:
    if REQUIRED:
        pytest.fail(f"{reason} (REQUIRE_CONTAINER_TESTS=1)")
    pytest.skip(reason)


def tail(text: str | bytes | None, lines: int = 25) -> str:
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    return "\n".join((text or "").splitlines()[-lines:])


class Engine:
    """podman and friends, run with a bounded time and the environment of this machine's recipe."""

    def __init__(self, env: dict[str, str], suffix: str) -> None:
        self.env = env
        self.suffix = suffix

    def run(
        self, *command: str, timeout: float = 120, check: bool = True, env: dict | None = None, cwd: Path = ROOT
    ) -> subprocess.CompletedProcess:
        try:
            result = subprocess.run(
                command, cwd=cwd, env=env or self.env, capture_output=True, text=True, timeout=timeout
            )
        except subprocess.TimeoutExpired as exc:
            pytest.fail(f"{' '.join(command)} took more than {timeout} s:\n{tail(exc.stdout)}\n{tail(exc.stderr)}")
        if check and result.returncode != 0:
            pytest.fail(
                f"{' '.join(command)} failed ({result.returncode}):\n{tail(result.stdout)}\n{tail(result.stderr)}"
            )
        return result

    def podman(self, *arguments: str, **options) -> subprocess.CompletedProcess:
        return self.run("podman", *arguments, **options)

    def quietly(self, *arguments: str, timeout: float = 60) -> None:
        """A clean-up step: never raises, so every later step still runs."""
        try:
            subprocess.run(("podman", *arguments), env=self.env, capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            pass

    def running(self, container: str) -> bool:
        result = self.podman("inspect", "--format", "{{.State.Running}}", container, check=False)
        return result.stdout.strip() == "true"

    def logs(self, container: str) -> str:
        result = self.podman("logs", container, check=False)
        return tail(result.stdout + result.stderr, 40)

    def inspect(self, kind: str, name: str) -> dict:
        return json.loads(self.podman(kind, "inspect", name).stdout)[0]


def curl(*arguments: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["curl", "-sS", "--max-time", str(int(timeout)), *arguments],
        capture_output=True,
        text=True,
        timeout=timeout + 5,
    )


def wait_healthy(engine: Engine, base: str, container: str, timeout: float = 90) -> float:
    """Poll GET /healthz until 200; seconds it took. Fails early when the container stops."""
    clock = Stopwatch()
    checked = 0.0
    while clock() < timeout:
        if curl("-f", "-o", "/dev/null", f"{base}/healthz", timeout=2).returncode == 0:
            return clock()
        if clock() - checked > 1:
            checked = clock()
            if not engine.running(container):
                pytest.fail(f"{container} stopped before answering /healthz:\n{engine.logs(container)}")
        time.sleep(0.1)
    pytest.fail(f"{base}/healthz did not answer within {timeout} s:\n{engine.logs(container)}")


def classify(base: str, path: Path = DIGIT) -> dict:
    result = curl("-f", "-F", f"image=@{path}", f"{base}/v1/classify")
    assert result.returncode == 0, f"curl {base}/v1/classify: {result.stderr}"
    return json.loads(result.stdout)


# ------------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def engine(measured):
    for tool, package in (("podman", "podman runc"), ("curl", "curl")):
        if shutil.which(tool) is None:
            unavailable(
                f"{tool} is not installed: the container smoke test needs it "
                f"(apt-get install {package}; .ci/run does, see ../shared/CONTAINERS.md)"
            )
    # nothing from the developer's shell that docker-compose would interpolate into the files
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("CONVLENS_", "DOCKER_", "COMPOSE_"))
        and key not in ("WEB_CONCURRENCY", "FORWARDED_ALLOW_IPS", "MNIST_DIR")
    }
    if "CONTAINERS_CONF" not in env and (SHARED / "containers.conf").exists():
        env["CONTAINERS_CONF"] = str((SHARED / "containers.conf").resolve())
    clock = Stopwatch()
    engine = Engine(env, f"{os.getpid()}-{secrets.token_hex(3)}")
    if engine.podman("image", "exists", BASE_IMAGE, check=False).returncode != 0:
        script = SHARED / "python-base.sh"
        if not script.exists():
            unavailable(f"{BASE_IMAGE} is not in podman's storage and {script} is missing to make it")
        engine.run("bash", str(script), timeout=600)
    yield engine
    measured["smoke test, total"] = f"{clock():.0f} s"


@pytest.fixture(scope="module")
def image(engine, measured) -> str:
    """The service image, built once from the project's Dockerfile; removed at the end."""
    if not (ROOT / "models" / "manifest.json").exists():
        pytest.fail("models/manifest.json is missing: the image bakes the shipped models in (make train)")
    tag = f"localhost/convlens-smoke:{engine.suffix}"
    clock = Stopwatch()
    try:
        engine.podman("build", "--format", "docker", "--pull=never", "-t", tag, "-f", "Dockerfile", ".", timeout=900)
        measured["image build"] = f"{clock():.0f} s"
        size = int(engine.podman("image", "inspect", "--format", "{{.Size}}", tag).stdout)
        measured["image size"] = f"{size / MiB:.0f} MiB ({size / 1e6:.0f} MB)"
        yield tag
    finally:
        engine.quietly("rmi", "-f", tag)


@pytest.fixture(scope="module")
def docker_socket(engine):
    """podman's Docker-compatible API on a socket of its own, for docker-compose; stopped at the end."""
    if shutil.which("docker-compose") is None:
        unavailable("docker-compose is not installed (apt-get install docker-compose; .ci/run does)")
    path = Path(f"/tmp/convlens-smoke-{engine.suffix}.sock")
    log = tempfile.TemporaryFile()  # a file, not a pipe: nobody reads it while the service runs
    service = subprocess.Popen(
        ["podman", "system", "service", "--time=0", f"unix://{path}"],
        env=engine.env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        clock = Stopwatch()
        while not path.exists() or curl("-f", "--unix-socket", str(path), "http://d/_ping", timeout=2).returncode:
            if service.poll() is not None or clock() > 30:
                log.seek(0)
                pytest.fail(f"podman system service did not answer on {path}: {tail(log.read())}")
            time.sleep(0.1)
        yield f"unix://{path}"
    finally:
        log.close()
        service.terminate()
        try:
            service.wait(timeout=15)
        except subprocess.TimeoutExpired:
            service.kill()
            service.wait(timeout=15)
        path.unlink(missing_ok=True)


def compose_project(engine: Engine, socket_url: str, name: str, files: list[str], settings: dict[str, str]):
    """A docker-compose command line for project ``name``, and a clean-up that removes all it made."""
    env = {**engine.env, "DOCKER_HOST": socket_url, **settings}
    command = ["docker-compose", "-p", name, *[part for path in files for part in ("-f", path)]]

    def compose(*arguments: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return engine.run(*command, *arguments, env=env, timeout=timeout)

    def clean_up() -> None:
        try:
            subprocess.run(
                [*command, "down", "--volumes", "--remove-orphans", "--timeout", "5"],
                cwd=ROOT,
                env=env,
                capture_output=True,
                timeout=120,
            )
        except subprocess.TimeoutExpired:
            pass
        try:
            left = subprocess.run(
                ["podman", "ps", "-aq", "--filter", f"label=com.docker.compose.project={name}"],
                env=engine.env,
                capture_output=True,
                text=True,
                timeout=60,
            ).stdout.split()
        except subprocess.TimeoutExpired:
            left = []
        if left:
            engine.quietly("rm", "-f", "-t", "0", *left)
        engine.quietly("network", "rm", "-f", f"{name}_default")

    def containers() -> list[str]:
        label = f"label=com.docker.compose.project={name}"
        return engine.podman("ps", "-a", "--format", "{{.Names}}", "--filter", label).stdout.split()

    return compose, clean_up, containers


# ------------------------------------------------------------------------------------------------ tests


def test_the_image_serves_digits_as_a_non_root_user_without_tensorflow(engine, image, measured):
    inspected = engine.inspect("image", image)
    config = inspected["Config"]
    assert config["User"] == "10001:10001"
    assert "/healthz" in " ".join(inspected["Healthcheck"]["Test"]), "HEALTHCHECK kept (--format docker)"
    assert "CONVLENS_MODEL_DIR=/app/models" in config["Env"]
    size = int(engine.podman("image", "inspect", "--format", "{{.Size}}", image).stdout)
    assert size < 700 * MiB, f"the service image is {size / MiB:.0f} MiB: did TensorFlow get in?"

    name, port = f"convlens-smoke-run-{engine.suffix}", free_port()
    try:
        engine.podman("run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:8000", image)
        base = f"http://127.0.0.1:{port}"
        measured["podman run -> healthy /healthz"] = f"{wait_healthy(engine, base, name):.1f} s"
        assert curl("-f", f"{base}/readyz").returncode == 0
        answer = classify(base)
        assert answer["digit"] == 7 and answer["model"] == "classifier", answer

        assert engine.podman("exec", name, "id", "-u").stdout.strip() not in ("", "0")
        tensorflow = engine.podman("exec", name, "python", "-c", "import tensorflow", check=False)
        assert tensorflow.returncode != 0 and "No module named 'tensorflow'" in tensorflow.stderr
        training = engine.podman("exec", name, "python", "-c", "import training", check=False)
        assert training.returncode != 0, "the service image carries service/ only"
        assert engine.podman("exec", name, "printenv", "CONVLENS_MODEL_DIR").stdout.strip() == "/app/models"

        # health checks are not scheduled here (no systemd); run the image's HEALTHCHECK once by hand
        engine.podman("healthcheck", "run", name, timeout=60)
    finally:
        engine.quietly("rm", "-f", "-t", "0", name)
    assert engine.podman("container", "exists", name, check=False).returncode != 0


def test_docker_compose_brings_the_api_up_through_the_podman_socket(engine, image, docker_socket, measured):
    name, port = f"convlens-smoke-{engine.suffix}", free_port()
    settings = {
        "CONVLENS_IMAGE": image,
        "CONVLENS_PUBLISH": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "2",
        "CONVLENS_MAX_UPLOAD_BYTES": "20000",
    }
    compose, clean_up, containers = compose_project(engine, docker_socket, name, ["docker-compose.yml"], settings)
    try:
        clock = Stopwatch()
        compose("up", "-d", "--build", timeout=600)
        up = clock()
        (container,) = containers()
        base = f"http://127.0.0.1:{port}"
        wait_healthy(engine, base, container)
        measured["compose up --build -> healthy /healthz"] = f"{clock():.1f} s (up returned after {up:.1f} s)"
        answer = classify(base)
        assert answer["digit"] == 7, answer

        host = engine.inspect("container", container)["HostConfig"]
        assert host["ReadonlyRootfs"] is True and host["RestartPolicy"]["Name"] == "unless-stopped"
        assert host["Memory"] == 512 * MiB and host["NanoCpus"] == 10**9
        assert {"RLIMIT_NOFILE", "RLIMIT_NPROC"} <= {limit["Name"] for limit in host["Ulimits"]}
        assert "/tmp" in host["Tmpfs"]
        assert engine.podman("exec", container, "id", "-u").stdout.strip() == "10001"
        assert "Read-only file system" in engine.podman("exec", container, "touch", "/app/x", check=False).stderr
        engine.podman("exec", container, "touch", "/tmp/x")

        # configuration comes from the environment: the upload limit, and WEB_CONCURRENCY worker processes
        big = subprocess.run(
            [
                "curl",
                "-sS",
                "--max-time",
                "30",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "-H",
                "content-type: image/png",
                "--data-binary",
                "@-",
                f"{base}/v1/classify",
            ],
            input=b"\x89PNG" + bytes(30000),
            capture_output=True,
            timeout=35,
        )
        assert big.stdout.decode() == "413", (big.stdout, big.stderr)
        workers = engine.podman("top", container, "args").stdout.count("multiprocessing.spawn")
        assert workers == 2, engine.podman("top", container, "args").stdout

        clock = Stopwatch()
        compose("down", "--timeout", "5", timeout=120)
        measured["compose down"] = f"{clock():.1f} s"
        assert containers() == []
    finally:
        clean_up()


def test_compose_scales_the_api_behind_the_proxy(engine, image, docker_socket, tmp_path):
    """deploy/compose.proxy.yml: nginx in front of `--scale api=2`, every replica answering.

    No registry is reachable here, so nginx comes from a stand-in image: Debian's nginx on the local
    python:3.11-slim stand-in (nginx reads /etc/nginx/conf.d/*.conf in both)."""
    nginx = f"localhost/convlens-smoke-nginx:{engine.suffix}"
    name, port = f"convlens-smoke-proxy-{engine.suffix}", free_port()
    settings = {
        "CONVLENS_IMAGE": image,
        "CONVLENS_PUBLISH": "127.0.0.1:",
        "CONVLENS_PROXY_IMAGE": nginx,
        "CONVLENS_PROXY_PUBLISH": f"127.0.0.1:{port}",
    }
    compose, clean_up, containers = compose_project(
        engine, docker_socket, name, ["docker-compose.yml", "deploy/compose.proxy.yml"], settings
    )
    try:
        (tmp_path / "Containerfile").write_text(
            "FROM python:3.11-slim\n"
            "RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends nginx-light >/dev/null"
            " && rm -rf /var/lib/apt/lists/* /etc/nginx/sites-enabled/default\n"
            'CMD ["nginx", "-g", "daemon off;"]\n'
        )
        engine.podman("build", "-q", "--pull=never", "-t", nginx, str(tmp_path), timeout=600)

        compose("up", "-d", "--scale", "api=2", timeout=300)
        replicas = [container for container in containers() if "_api_" in container]
        assert len(replicas) == 2, containers()
        for index, replica in enumerate(replicas, start=1):
            address = compose("port", "--index", str(index), "api", "8000").stdout.strip()
            wait_healthy(engine, f"http://{address}", replica)
        base = f"http://127.0.0.1:{port}"
        clock = Stopwatch()
        while curl("-f", "-o", "/dev/null", f"{base}/readyz", timeout=2).returncode != 0:
            if clock() > 30:
                pytest.fail(f"the proxy did not answer:\n{engine.logs(f'{name}_proxy_1')}")
            time.sleep(0.2)
        for _ in range(6):
            assert classify(base)["digit"] == 7

        served = []
        for index in (1, 2):
            address = compose("port", "--index", str(index), "api", "8000").stdout.strip()
            metrics = curl("-f", f"http://{address}/metrics").stdout
            served.append(
                sum(
                    float(line.rsplit(" ", 1)[1])
                    for line in metrics.splitlines()
                    if line.startswith("convlens_requests_total{") and "/v1/classify" in line
                )
            )
        assert sum(served) == 6 and all(served), f"classifications per replica: {served}"
    finally:
        clean_up()
        engine.quietly("rmi", "-f", nginx)


def test_the_kubernetes_deployment_runs_under_podman_kube_play(engine, image, tmp_path, measured):
    """deploy/kubernetes/ as a whole (but the sweep's and the analysis' Jobs), with the Deployment cut to one replica
    on a loopback hostPort (each replica is its own pod here, and only one can bind the port) and the image just
    built."""
    name, port = f"convlens-smoke-{engine.suffix}", free_port()
    documents = [
        document
        for path in sorted((ROOT / "deploy" / "kubernetes").glob("*.yaml"))
        if not path.name.endswith("-job.yaml")  # the variants sweep's and the analysis' Jobs, not the service
        for document in yaml.safe_load_all(path.read_text())
        if document
    ]
    (deployment,) = [document for document in documents if document["kind"] == "Deployment"]
    deployment["metadata"]["name"] = name
    deployment["spec"]["replicas"] = 1
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    container["image"], container["imagePullPolicy"] = image, "Never"
    container["ports"][0].update(hostPort=port, hostIP="127.0.0.1")
    # podman turns an emptyDir into a named volume: give it a name of its own
    for volume in pod["volumes"]:
        for mount in container["volumeMounts"]:
            if mount["name"] == volume["name"]:
                mount["name"] = f"{volume['name']}-{engine.suffix}"
        volume["name"] = f"{volume['name']}-{engine.suffix}"
    manifest = tmp_path / "convlens.yaml"
    manifest.write_text(yaml.safe_dump_all(documents))
    pod_name, container_name = f"{name}-pod-0", f"{name}-pod-0-{container['name']}"
    try:
        clock = Stopwatch()
        engine.podman("kube", "play", str(manifest), timeout=300)
        base = f"http://127.0.0.1:{port}"
        measured["podman kube play -> healthy /healthz"] = f"{wait_healthy(engine, base, container_name):.1f} s"
        assert curl("-f", f"{base}/readyz").returncode == 0
        assert classify(base)["digit"] == 7

        host = engine.inspect("container", container_name)["HostConfig"]
        assert host["ReadonlyRootfs"] is True and host["Memory"] == 512 * MiB
        assert engine.podman("exec", container_name, "id", "-u").stdout.strip() == "10001"
        engine.podman("exec", container_name, "touch", "/tmp/x")
        clock = Stopwatch()
        engine.podman("kube", "down", str(manifest), timeout=120)
        measured["podman kube down"] = f"{clock():.1f} s"
        assert engine.podman("pod", "exists", pod_name, check=False).returncode != 0
    finally:
        engine.quietly("kube", "down", str(manifest), timeout=120)
        engine.quietly("pod", "rm", "-f", "-t", "0", pod_name)
        for volume in pod["volumes"]:
            engine.quietly("volume", "rm", "-f", volume["name"])


@pytest.mark.skipif(
    os.environ.get("TEST_TRAINING_IMAGE") != "1",
    reason="builds the 2.5 GB TensorFlow training image (about 3 minutes on 2 cores with a cold cache); "
    "set TEST_TRAINING_IMAGE=1 to run it",
)
def test_the_training_image_trains_models_that_the_service_image_serves_from_a_volume(
    engine, image, mnist_dir, tmp_path, measured
):
    tag = f"localhost/convlens-smoke-train:{engine.suffix}"
    out, reports = tmp_path / "models", tmp_path / "reports"
    for folder in (out, reports):
        folder.mkdir()
        folder.chmod(0o777)  # the image writes as its own unprivileged user
    name, port = f"convlens-smoke-trained-{engine.suffix}", free_port()
    try:
        clock = Stopwatch()
        engine.podman(
            "build", "--format", "docker", "--pull=never", "-t", tag, "-f", "Dockerfile.train", ".", timeout=1800
        )
        size = int(engine.podman("image", "inspect", "--format", "{{.Size}}", tag).stdout)
        measured["training image build, size"] = f"{clock():.0f} s, {size / MiB:.0f} MiB"
        volumes = ["-v", f"{mnist_dir.resolve()}:/data/mnist:ro", "-v", f"{out}:/convlens/models"]
        clock = Stopwatch()
        engine.podman(
            "run",
            "--rm",
            *volumes,
            tag,
            "train",
            "--epochs",
            "1",
            "--autoencoder-epochs",
            "1",
            "--train-limit",
            "512",
            "--test-limit",
            "256",
            "--out-dir",
            "models",  # a run on a slice of the data goes to a scratch folder unless told otherwise
            timeout=900,
        )
        analyze = ("analyze", "--limit", "256", "--no-plots", "--out-dir", "models")
        engine.podman("run", "--rm", *volumes, tag, *analyze, timeout=900)
        engine.podman("run", "--rm", *volumes, "-v", f"{reports}:/convlens/reports", tag, "report", timeout=900)
        measured["training image: tiny train, analyze, report"] = f"{clock():.0f} s"
        assert {"manifest.json", "classifier.onnx", "autoencoder.onnx", "statistics.json"} <= {
            path.name for path in out.iterdir()
        }
        assert (reports / "paper" / "README.md").exists()

        engine.podman("run", "-d", "--name", name, "-v", f"{out}:/app/models:ro", "-p", f"127.0.0.1:{port}:8000", image)
        base = f"http://127.0.0.1:{port}"
        wait_healthy(engine, base, name)
        served = engine.podman("exec", name, "sha256sum", "/app/models/classifier.onnx").stdout.split()[0]
        assert served == hashlib.sha256((out / "classifier.onnx").read_bytes()).hexdigest()
        assert 0 <= classify(base)["digit"] <= 9
    finally:
        engine.quietly("rm", "-f", "-t", "0", name)
        engine.quietly("rmi", "-f", tag)
