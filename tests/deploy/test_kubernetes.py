"""deploy/kubernetes/: valid against the Kubernetes schemas (offline, strict: unknown fields are errors)
and consistent with each other and with the image. (test_containers.py runs the Deployment with podman.) The sweep's
Indexed Job (sweep-job.yaml) is checked here too; tests/training/test_sweep_job.py runs its pods' commands."""

from __future__ import annotations

import pytest
import yaml

kubernetes_validate = pytest.importorskip("kubernetes_validate", reason="kubernetes-validate is in the dev extra")

from tests.deploy.conftest import ROOT  # noqa: E402

MANIFESTS = sorted((ROOT / "deploy" / "kubernetes").glob("*.yaml"))
SWEEP_JOB = ROOT / "deploy" / "kubernetes" / "sweep-job.yaml"
ANALYZE_JOB = ROOT / "deploy" / "kubernetes" / "analyze-job.yaml"
# the service, applied together (the Jobs are applied on their own)
SERVICE_MANIFESTS = [path for path in MANIFESTS if path not in (SWEEP_JOB, ANALYZE_JOB)]
# the oldest Kubernetes release still commonly run, and the newest the installed schemas know
VERSIONS = ["1.27.0", kubernetes_validate.latest_version()]


def documents() -> dict[str, dict]:
    """Every manifest of the service by kind."""
    found = {}
    for path in SERVICE_MANIFESTS:
        for document in yaml.safe_load_all(path.read_text()):
            if document:
                assert document["kind"] not in found, f"two {document['kind']}s"
                found[document["kind"]] = document
    return found


@pytest.fixture(scope="module")
def kinds() -> dict[str, dict]:
    return documents()


@pytest.fixture(scope="module")
def pod(kinds) -> dict:
    return kinds["Deployment"]["spec"]["template"]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("path", MANIFESTS, ids=lambda path: path.name)
def test_manifests_are_valid_kubernetes_objects(path, version):
    for document in yaml.safe_load_all(path.read_text()):
        if document:
            kubernetes_validate.validate(document, version, strict=True)


def test_strict_validation_rejects_a_misspelt_field(kinds):
    deployment = yaml.safe_load(yaml.safe_dump(kinds["Deployment"]))
    deployment["spec"]["replica"] = deployment["spec"].pop("replicas")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, VERSIONS[-1], strict=True)


def test_the_set_is_a_deployment_a_service_and_an_autoscaler(kinds):
    assert {"Deployment", "Service", "HorizontalPodAutoscaler"} <= set(kinds)


def test_the_deployment_runs_several_replicas_probed_on_readyz_and_healthz(kinds, pod):
    assert kinds["Deployment"]["spec"]["replicas"] >= 2
    (container,) = pod["spec"]["containers"]
    port = container["ports"][0]
    assert port["containerPort"] == 8000
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["port"] in (port["name"], 8000)


def test_the_pods_have_resources_and_run_unprivileged_on_a_read_only_root(pod):
    (container,) = pod["spec"]["containers"]
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert {"cpu", "memory"} <= set(container["resources"]["limits"])
    security = pod["spec"]["securityContext"]
    assert security["runAsNonRoot"] is True and security["runAsUser"] >= 1000
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
    volumes = {volume["name"]: volume for volume in pod["spec"]["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]], "a writable /tmp for spooled uploads"


def test_the_runtime_user_is_the_image_user(pod):
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert f"ARG APP_UID={pod['spec']['securityContext']['runAsUser']}\n" in dockerfile


def test_the_service_and_the_autoscaler_point_at_the_deployment(kinds, pod):
    deployment = kinds["Deployment"]
    labels = pod["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    service = kinds["Service"]["spec"]
    assert service["selector"].items() <= labels.items()
    assert service["ports"][0]["targetPort"] in ("http", 8000)
    target = kinds["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    hpa = kinds["HorizontalPodAutoscaler"]["spec"]
    assert 2 <= hpa["minReplicas"] < hpa["maxReplicas"]
    assert [metric["resource"]["name"] for metric in hpa["metrics"]] == ["cpu"]


def sweep_documents() -> dict[tuple[str, str], dict]:
    """sweep-job.yaml's objects by kind and name."""
    documents = [document for document in yaml.safe_load_all(SWEEP_JOB.read_text()) if document]
    return {(document["kind"], document["metadata"]["name"]): document for document in documents}


def test_the_sweep_is_an_indexed_job_of_16_on_the_training_image_writing_to_a_shared_volume():
    from training.config import VARIANTS

    objects = sweep_documents()
    assert sorted(objects) == [
        ("Job", "convlens-sweep"),
        ("Job", "convlens-sweep-collect"),
        ("PersistentVolumeClaim", "convlens-sweep"),
    ]
    claim = objects["PersistentVolumeClaim", "convlens-sweep"]
    assert "ReadWriteMany" in claim["spec"]["accessModes"], "every pod writes into it at once"
    sweep = objects["Job", "convlens-sweep"]["spec"]
    assert sweep["completionMode"] == "Indexed" and sweep["completions"] == len(VARIANTS) == 16
    assert 1 <= sweep["parallelism"] <= sweep["completions"]
    (train,) = sweep["template"]["spec"]["containers"]
    assert train["command"] == ["python", "-m", "training"] and train["args"][0] == "train-variant"
    options = train["args"][1:]
    assert all(argument.startswith("--") for argument in options[::2]), "no variant named: the pod's index decides"
    collect = objects["Job", "convlens-sweep-collect"]["spec"]
    assert collect["suspend"] is True, "collect waits to be resumed once the sweep is done"
    (collector,) = collect["template"]["spec"]["containers"]
    assert collector["args"][:2] == ["collect", options[options.index("--out-dir") + 1]]
    for job in (sweep, collect):
        spec = job["template"]["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True
        claims = {
            volume["persistentVolumeClaim"]["claimName"]
            for volume in spec["volumes"]
            if "persistentVolumeClaim" in volume
        }
        assert claims == {"convlens-sweep"}
        for container in spec["containers"] + spec.get("initContainers", []):
            assert container["image"].split(":")[0].endswith("convlens-train"), "the training image"
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            assert {"cpu", "memory"} <= set(container["resources"]["limits"])


def test_the_sweep_runs_as_the_training_image_user():
    dockerfile = (ROOT / "Dockerfile.train").read_text()
    for (kind, _), document in sweep_documents().items():
        if kind == "Job":
            assert f"ARG APP_UID={document['spec']['template']['spec']['securityContext']['runAsUser']}\n" in dockerfile
