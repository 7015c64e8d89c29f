"""A folder of images, one subfolder per class (torchvision ImageFolder and Imagenette style), decoded with Pillow.

Layouts of the folder ROOT given as the dataset argument:
- ROOT/<class>/<image>: a seeded share of the images (TEST_SHARE, SPLIT_SEED) is the test split, the rest the
  training split; Dataset.split_note says so.
- ROOT/train/<class>/<image> beside ROOT/test/<class>/<image> or ROOT/val/<class>/<image> (test/ when both are
  there; train/ may be left out): those folders are the splits.
Classes are the class folders' names in sorted order, labels 0..K-1 (of train/ when there is one); an empty class
folder keeps its label. Images are the .png, .jpg and .jpeg files (any case); other files and hidden entries
(".name") are left out. Each image is converted to RGB (grayscale "L" for a one-channel input shape), cropped to its
centre at the aspect of the input shape and resized (bilinear) to it: 3x224x224 unless the caller passes the model's
(C, H, W) as load_dataset's input_shape.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from evaluator.datasets.base import MAX_DATASET_BYTES, DatasetFormat, register_format
from evaluator.datasets.types import Dataset, Split
from evaluator.errors import EvaluatorError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
DEFAULT_INPUT_SHAPE = (3, 224, 224)  # (C, H, W) when the caller does not pass the model's
MODES = {1: "L", 3: "RGB"}  # channels of the input shape -> Pillow mode the images are converted to
TRAIN_FOLDER = "train"
TEST_FOLDERS = ("test", "val")  # the first found is the test split
TEST_SHARE = 0.2  # of a folder without split folders, the share of images in the test split
SPLIT_SEED = 0
MAX_IMAGES = 1 << 20  # image files listed in one folder, before any is decoded
MAX_IMAGE_PIXELS = 1 << 26  # width x height of one image, checked from its header before it is decoded

Labelled = list[tuple[Path, int]]  # image files with their labels


@register_format
class ImageFolderFormat(DatasetFormat):
    name = "image-folder"
    summary = "a folder of class folders of .png/.jpg images, or of train/ and val/ or test/ folders of them"

    def recognises(self, argument: str) -> bool:
        """A folder holding a train/, val/ or test/ folder, or a class folder with an image in it."""
        try:
            root = Path(argument)
            if argument == "" or not root.is_dir():
                return False
            return any(folder.name in (TRAIN_FOLDER, *TEST_FOLDERS) or holds_images(folder) for folder in class_folders(root))
        except OSError:
            return False

    def load(self, argument: str, data_dir: Path | None, test_only: bool) -> Dataset:
        """Images of DEFAULT_INPUT_SHAPE; data_dir is not used."""
        return load_image_folder(argument, DEFAULT_INPUT_SHAPE, test_only)

    def load_for(self, argument: str, data_dir: Path | None, test_only: bool,
                 input_shape: tuple[int, int, int] | None) -> Dataset:
        """Images of input_shape (C, H, W) when given, else DEFAULT_INPUT_SHAPE."""
        return load_image_folder(argument, input_shape or DEFAULT_INPUT_SHAPE, test_only)


def load_image_folder(argument: str, input_shape: tuple[int, int, int], test_only: bool) -> Dataset:
    """The folder `argument` as splits of x (N, C, H, W) float32 in [0, 1] for input_shape (C, H, W), y (N,) int64.
    test_only: the training images are not decoded (train None). Files are listed and counted, and the decoded
    size checked against MAX_DATASET_BYTES, before any image is decoded."""
    channels, height, width = (int(d) for d in input_shape)
    if channels not in MODES or height < 1 or width < 1:
        raise EvaluatorError(f"{argument}: images are decoded to 3 (RGB) or 1 (grayscale) channels of at least 1x1 "
                             f"pixels, not to the input shape {tuple(input_shape)}")
    root = Path(argument)
    if not root.is_dir():
        raise EvaluatorError(f"image folder not found: {root}")
    try:
        classes, train_files, test_files, note = list_splits(root, test_only)
    except OSError as error:
        raise EvaluatorError(f"cannot list the images of {root}: {' '.join(str(error).split())}") from None
    count = len(test_files) + len(train_files or [])
    size = count * channels * height * width
    if size > MAX_DATASET_BYTES:
        raise EvaluatorError(f"{root}: {count:,} images of {channels}x{height}x{width} decode to {size:,} bytes, over "
                             f"the limit of {MAX_DATASET_BYTES:,} bytes per dataset")
    shape = (channels, height, width)
    train = None if not train_files else decode_split(train_files, shape)
    return Dataset(argument, classes, train, decode_split(test_files, shape), note)


def list_splits(root: Path, test_only: bool) -> tuple[tuple[str, ...], Labelled | None, Labelled, str]:
    """(classes, training files or None, test files, split note) of the folder's layout (module docstring)."""
    names = {folder.name for folder in class_folders(root)}
    if names & {TRAIN_FOLDER, *TEST_FOLDERS}:
        test_name = next((name for name in TEST_FOLDERS if name in names), None)
        if test_name is None:
            folders = " or ".join(f"{name}/" for name in TEST_FOLDERS)
            raise EvaluatorError(f"{root} has a {TRAIN_FOLDER}/ folder but no {folders} beside it")
        train_dir = root / TRAIN_FOLDER if TRAIN_FOLDER in names else None
        classes = tuple(folder.name for folder in class_folders(train_dir or root / test_name))
        if not classes:
            raise EvaluatorError(f"{train_dir or root / test_name} holds no class folders")
        train = None if test_only or train_dir is None else list_images(train_dir, classes)
        note = f"the test split is {test_name}/" + ("" if train_dir else f", and there is no {TRAIN_FOLDER}/")
        return classes, train, list_images(root / test_name, classes), note
    classes = tuple(folder.name for folder in class_folders(root))
    files = list_images(root, classes)
    order = np.random.default_rng(SPLIT_SEED).permutation(len(files))
    test_count = max(1, round(len(files) * TEST_SHARE))
    test = [files[i] for i in np.sort(order[:test_count])]
    train = None if test_only else [files[i] for i in np.sort(order[test_count:])]
    note = f"the test split is a seeded {TEST_SHARE:.0%} of the images (seed {SPLIT_SEED}), the rest the training split"
    return classes, train, test, note


def class_folders(folder: Path) -> list[Path]:
    """The folder's subfolders, hidden ones left out, sorted by name."""
    return sorted((Path(entry.path) for entry in os.scandir(folder) if not entry.name.startswith(".") and entry.is_dir()),
                  key=lambda path: path.name)


def is_image(entry: os.DirEntry[str]) -> bool:
    return not entry.name.startswith(".") and entry.name.lower().endswith(IMAGE_SUFFIXES) and entry.is_file()


def holds_images(folder: Path) -> bool:
    return any(is_image(entry) for entry in os.scandir(folder))


def list_images(folder: Path, classes: tuple[str, ...]) -> Labelled:
    """The images of folder's class folders with their labels (the index of the folder's name in classes), in the
    order of classes and file names; at most MAX_IMAGES, counted while listing."""
    labels = {name: label for label, name in enumerate(classes)}
    found: Labelled = []
    for class_folder in class_folders(folder):
        if class_folder.name not in labels:
            raise EvaluatorError(f"{class_folder}: class {class_folder.name!r} is not among the {len(classes)} classes "
                                 f"of the training folder")
        images = []
        for entry in os.scandir(class_folder):
            if is_image(entry):
                images.append(Path(entry.path))
                if len(found) + len(images) > MAX_IMAGES:
                    raise EvaluatorError(f"{folder} holds over {MAX_IMAGES:,} images, the limit of one image folder")
        found += [(path, labels[class_folder.name]) for path in sorted(images, key=lambda path: path.name)]
    if not found:
        raise EvaluatorError(f"{folder} holds no {'/'.join(IMAGE_SUFFIXES)} images in class folders")
    return found


def decode_split(files: Labelled, shape: tuple[int, int, int]) -> Split:
    """The images decoded into x (N, C, H, W) float32 in [0, 1] for shape (C, H, W), labels y (N,) int64."""
    x = np.empty((len(files), *shape), np.float32)
    for index, (path, _) in enumerate(files):
        pixels = decode_image(path, shape)  # (H, W) or (H, W, 3) uint8
        x[index] = pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)
    x /= np.float32(255.0)
    return Split(x, np.array([label for _, label in files], np.int64))


def decode_image(path: Path, shape: tuple[int, int, int]) -> np.ndarray:
    """One image converted to the mode of shape's channels, its centre cropped to the aspect of shape and resized
    to it: (H, W) uint8 for one channel, (H, W, 3) for three."""
    from PIL import Image  # imported when images are decoded: listing formats does not load Pillow

    channels, height, width = shape
    try:
        with Image.open(path) as image:
            image_width, image_height = image.size
            if image_width * image_height > MAX_IMAGE_PIXELS:
                raise EvaluatorError(f"{path}: {image_width}x{image_height} pixels, over the limit of "
                                     f"{MAX_IMAGE_PIXELS:,} pixels per image")
            box = centre_box(image_width, image_height, width / height)
            resized = image.convert(MODES[channels]).resize((width, height), Image.Resampling.BILINEAR, box=box)
            return np.asarray(resized, dtype=np.uint8)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        raise EvaluatorError(f"cannot decode image {path}: {' '.join(str(error).split())}") from None


def centre_box(width: int, height: int, aspect: float) -> tuple[float, float, float, float]:
    """(left, top, right, bottom) of the largest box of aspect (width / height) centred in a width x height image."""
    box_width, box_height = (height * aspect, height) if width > height * aspect else (width, width / aspect)
    left, top = (width - box_width) / 2, (height - box_height) / 2
    return left, top, left + box_width, top + box_height
