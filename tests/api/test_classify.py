"""Classification through HTTP of real MNIST test digits, as sent and as a person would photograph them."""

import numpy as np
from PIL import Image

from tests.helpers import encode, post_image

SAMPLE = 500


def test_real_test_digits_sent_as_png_classify_as_accurately_as_the_manifest_says(client, manifest, mnist_test):
    images, labels = mnist_test
    predicted = [post_image(client, "/v1/classify", encode(image)).json()["digit"] for image in images[:SAMPLE]]
    accuracy = float(np.mean(np.array(predicted) == labels[:SAMPLE]))
    assert accuracy >= manifest["models"]["classifier"]["metrics"]["test_accuracy"] - 0.003


def test_dark_on_white_jpegs_at_five_times_the_size_classify_at_97_percent(client, mnist_test):
    images, labels = mnist_test
    predicted = []
    for image in images[:SAMPLE]:
        big = Image.fromarray(255 - image).resize((140, 140), Image.BICUBIC)
        predicted.append(
            post_image(client, "/v1/classify", encode(np.asarray(big), "JPEG", quality=90), "image/jpeg").json()[
                "digit"
            ]
        )
    assert float(np.mean(np.array(predicted) == labels[:SAMPLE])) >= 0.97


def test_classification_has_ten_probabilities_summing_to_one(client, digit_png):
    body = post_image(client, "/v1/classify", digit_png).json()
    assert body["model"] == "classifier" and body["digit"] == 7
    assert len(body["probabilities"]) == 10 and abs(sum(body["probabilities"]) - 1) < 1e-5
    assert int(np.argmax(body["probabilities"])) == body["digit"]


def test_multipart_upload_gives_the_same_answer_as_a_raw_body(client, digit_png):
    multipart = client.post("/v1/classify", files={"image": ("seven.png", digit_png, "image/png")}).json()
    assert multipart == post_image(client, "/v1/classify", digit_png).json()


def test_autoencoder_cannot_classify(client, digit_png):
    response = post_image(client, "/v1/classify", digit_png, model="autoencoder")
    assert response.status_code == 422
    assert "does not classify" in response.json()["error"]
