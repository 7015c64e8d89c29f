"""The image-folder format (evaluator/datasets/image_folder.py): class folders of PNG and JPEG images written here
with Pillow, their layouts, splits, resizing and class names; bad folders and images refused with one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from evaluator.datasets import find_format, load_dataset
from evaluator.datasets import image_folder
from evaluator.errors import EvaluatorError

from conftest import ZOO_PARENT

COLOURS = {"bird": (255, 0, 0), "cat": (0, 255, 0), "dog": (51, 102, 204)}  # one solid colour per class


def write_image(path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (12, 9)) -> Path:
    """A solid `colour` image of size (width, height), in the format of path's suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)
    return path


def write_classes(root: Path, counts: dict[str, int], suffix: str = ".png") -> None:
    for name, count in counts.items():
        for index in range(count):
            write_image(root / name / f"{index:02d}{suffix}", COLOURS[name], size=(12 + index, 9))


def test_a_flat_folder_is_split_by_a_seed(tmp_path: Path) -> None:
    write_classes(tmp_path, {"dog": 10, "cat": 7, "bird": 3})
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "cat" / "readme.md").write_text("not an image")
    dataset = load_dataset(str(tmp_path), input_shape=(3, 8, 8))
    assert dataset.name == str(tmp_path) and dataset.classes == ("bird", "cat", "dog")
    assert dataset.split_note == ("the test split is a seeded 20% of the images (seed 0), the rest the training split")
    assert dataset.train is not None and len(dataset.train) == 16 and len(dataset.test) == 4
    for split in (dataset.train, dataset.test):
        assert split.x.shape == (len(split), 3, 8, 8) and split.x.dtype == np.float32 and split.y.dtype == np.int64
        for image, label in zip(split.x, split.y):
            colour = np.array(COLOURS[dataset.classes[label]], np.float32) / np.float32(255.0)
            np.testing.assert_array_equal(image, np.broadcast_to(colour[:, None, None], (3, 8, 8)))
    labels = np.concatenate([dataset.train.y, dataset.test.y])
    assert np.bincount(labels).tolist() == [3, 7, 10]
    again = load_dataset(str(tmp_path), input_shape=(3, 8, 8), test_only=True)
    assert again.train is None
    np.testing.assert_array_equal(again.test.x, dataset.test.x)
    np.testing.assert_array_equal(again.test.y, dataset.test.y)


def test_the_default_shape_is_rgb_224(tmp_path: Path) -> None:
    write_classes(tmp_path, {"cat": 2})
    dataset = load_dataset(str(tmp_path))
    assert dataset.input_shape == (3, 224, 224) and len(dataset.test) == 1 and dataset.classes == ("cat",)


def test_the_centre_is_cropped_and_resized(tmp_path: Path) -> None:
    """A 40x20 image, red | green | blue in columns of 10, 20 and 10: its centre square is the green part."""
    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:, :10, 0] = pixels[:, 10:30, 1] = pixels[:, 30:, 2] = 255
    Image.fromarray(pixels).save(write_image(tmp_path / "train" / "wide" / "a.png", (0, 0, 0)))
    write_image(tmp_path / "val" / "wide" / "a.png", (0, 0, 0))
    dataset = load_dataset(str(tmp_path), input_shape=(3, 10, 10))
    assert dataset.train is not None and dataset.train.x.shape == (1, 3, 10, 10)
    red, green, blue = dataset.train.x[0]
    assert green.min() >= 0.85 and red[:, 1:].max() == 0 and blue[:, :-1].max() == 0
    tall = load_dataset(str(tmp_path), input_shape=(3, 20, 5)).train  # a 1:4 box in the centre of the green
    assert tall is not None and tall.x.shape == (1, 3, 20, 5) and tall.x[0, 1].min() == 1.0 and tall.x[0, 0].max() == 0


def test_one_channel_models_get_grayscale(tmp_path: Path) -> None:
    write_classes(tmp_path, {"dog": 5})
    dataset = load_dataset(str(tmp_path), input_shape=(1, 6, 6))
    grey = (51 * 299 + 102 * 587 + 204 * 114) / 1000  # ITU-R 601-2 luma, as Pillow converts RGB to L
    assert dataset.test.x.shape == (1, 1, 6, 6)
    np.testing.assert_allclose(dataset.test.x, round(grey) / 255, atol=1 / 255)


def test_train_and_val_folders_are_the_splits(tmp_path: Path) -> None:
    write_classes(tmp_path / "train", {"bird": 2, "cat": 3, "dog": 1}, suffix=".JPEG")
    write_classes(tmp_path / "val", {"dog": 2}, suffix=".jpg")
    (tmp_path / "val" / ".cache").mkdir()
    dataset = load_dataset(str(tmp_path), input_shape=(3, 4, 4))
    assert dataset.classes == ("bird", "cat", "dog") and dataset.split_note == "the test split is val/"
    assert dataset.train is not None and dataset.train.y.tolist() == [0, 0, 1, 1, 1, 2]
    assert dataset.test.y.tolist() == [2, 2]  # labels of train/'s classes
    np.testing.assert_allclose(dataset.test.x[:, :, 1:3, 1:3].mean(axis=(0, 2, 3)),
                               np.array(COLOURS["dog"]) / 255, atol=4 / 255)  # JPEG: close to the colour
    write_classes(tmp_path / "test", {"cat": 1})
    test = load_dataset(str(tmp_path), input_shape=(3, 4, 4), test_only=True)
    assert test.train is None and test.test.y.tolist() == [1] and test.split_note == "the test split is test/"


def test_a_val_folder_alone(tmp_path: Path) -> None:
    write_classes(tmp_path / "val", {"cat": 1, "dog": 1})
    dataset = load_dataset(str(tmp_path), input_shape=(3, 4, 4))
    assert dataset.train is None and dataset.classes == ("cat", "dog") and dataset.test.y.tolist() == [0, 1]
    assert dataset.split_note == "the test split is val/, and there is no train/"


def test_what_is_recognised(tmp_path: Path) -> None:
    write_classes(tmp_path / "classes", {"cat": 1})
    write_image(tmp_path / "loose" / "a.png", (0, 0, 0))
    (tmp_path / "empty" / "cat").mkdir(parents=True)
    (tmp_path / "split" / "train").mkdir(parents=True)
    assert find_format(str(tmp_path / "classes")).name == find_format(str(tmp_path / "split")).name == "image-folder"
    for argument in ("loose", "empty", "missing"):
        with pytest.raises(EvaluatorError, match=r"^unknown dataset .*image-folder \(a folder of class folders"):
            find_format(str(tmp_path / argument))


def one_line_error(root: Path, input_shape: tuple[int, int, int] = (3, 4, 4), test_only: bool = False) -> str:
    with pytest.raises(EvaluatorError) as raised:
        image_folder.load_image_folder(str(root), input_shape, test_only)
    assert "\n" not in str(raised.value)
    return str(raised.value)


def test_bad_layouts(tmp_path: Path) -> None:
    (tmp_path / "empty" / "cat").mkdir(parents=True)
    assert one_line_error(tmp_path / "empty") == f"{tmp_path / 'empty'} holds no .png/.jpg/.jpeg images in class folders"
    write_classes(tmp_path / "only_train" / "train", {"cat": 1})
    assert one_line_error(tmp_path / "only_train") == (f"{tmp_path / 'only_train'} has a train/ folder but no test/ or "
                                                       "val/ beside it")
    write_classes(tmp_path / "odd" / "train", {"cat": 1})
    write_classes(tmp_path / "odd" / "val", {"dog": 1})
    assert one_line_error(tmp_path / "odd") == (f"{tmp_path / 'odd' / 'val' / 'dog'}: class 'dog' is not among the 1 "
                                                "classes of the training folder")
    assert one_line_error(tmp_path / "missing") == f"image folder not found: {tmp_path / 'missing'}"


@pytest.mark.parametrize("content", [b"", b"\x89PNG\r\n\x1a\n broken", b"GIF89a not really"])
def test_a_corrupt_image_is_named(tmp_path: Path, content: bytes) -> None:
    write_classes(tmp_path, {"cat": 3})
    (tmp_path / "cat" / "01.png").write_bytes(content)
    assert one_line_error(tmp_path).startswith(f"cannot decode image {tmp_path / 'cat' / '01.png'}: ")


def test_a_truncated_image_is_named(tmp_path: Path) -> None:
    path = write_image(tmp_path / "cat" / "big.jpg", (10, 20, 30), size=(64, 64))
    path.write_bytes(path.read_bytes()[:200])
    assert one_line_error(tmp_path).startswith(f"cannot decode image {path}: ")


def test_sizes_are_checked_before_decoding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_classes(tmp_path, {"cat": 3, "dog": 2})
    (tmp_path / "dog" / "00.png").write_bytes(b"corrupt, but never decoded")
    assert one_line_error(tmp_path, (3, 30_000, 30_000)) == (
        f"{tmp_path}: 5 images of 3x30000x30000 decode to 13,500,000,000 bytes, over the limit of 4,294,967,296 bytes "
        "per dataset")
    assert one_line_error(tmp_path, (4, 8, 8)) == (f"{tmp_path}: images are decoded to 3 (RGB) or 1 (grayscale) "
                                                   "channels of at least 1x1 pixels, not to the input shape (4, 8, 8)")
    monkeypatch.setattr(image_folder, "MAX_IMAGES", 4)
    assert one_line_error(tmp_path) == f"{tmp_path} holds over 4 images, the limit of one image folder"
    monkeypatch.setattr(image_folder, "MAX_IMAGE_PIXELS", 100)
    path = write_image(tmp_path / "one" / "cat" / "a.png", (1, 2, 3), size=(20, 6))
    assert one_line_error(tmp_path / "one") == f"{path}: 20x6 pixels, over the limit of 100 pixels per image"


def test_assess_refuses_a_corrupt_image_with_one_line(tmp_path: Path) -> None:
    from evaluator.app.cli import app

    write_classes(tmp_path, {"dog": 1})
    (tmp_path / "dog" / "00.png").write_bytes(b"not a png")
    result = CliRunner().invoke(app, ["assess", str(ZOO_PARENT), "--dataset", str(tmp_path), "--no-latency"])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.output
    assert f"cannot decode image {tmp_path / 'dog' / '00.png'}: cannot identify image file" in lines[0]


def test_assess_decodes_a_folder_at_the_models_input_size(tmp_path: Path) -> None:
    """10 classes of 40x40 colour images, assessed end to end by the 1x28x28 zoo model: decoded grayscale at 28x28."""
    import json

    from evaluator.app.cli import app

    rng = np.random.default_rng(0)
    for label in range(10):
        for index in range(5):
            pixels = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
            (tmp_path / "images" / f"class{label}").mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels).save(tmp_path / "images" / f"class{label}" / f"{index}.png")
    report = tmp_path / "report.json"
    result = CliRunner().invoke(app, ["assess", str(ZOO_PARENT), "--dataset", str(tmp_path / "images"), "--samples", "8",
                                      "--attacks", "square-linf:queries=5", "--no-latency", "--json", str(report)])
    assert result.exit_code == 0, result.output
    model = json.loads(report.read_text())["models"][0]
    assert model["clean_samples"] == 10 and model["samples"]["count"] == 8  # the seeded 20 % test split of 50 images
