"""The study's architectures behind one registry; inputs are float32 NCHW in [0, 1].

Every model starts with a `Normalize` layer, so the normalisation is part of the exported graph and
every epsilon lives in [0, 1] pixel space.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Callable

import torch
from torch import nn

from evaluator.errors import EvaluatorError
from evaluator.limits import MAX_CLASSES


@dataclass(frozen=True)
class ArchSpec:
    """What it takes to rebuild an architecture: name, input (C, H=W) and output size, width multiplier."""

    name: str
    in_channels: int = 1
    image_size: int = 28
    num_classes: int = 10
    width: float = 1.0
    mean: tuple[float, ...] = (0.5,)
    std: tuple[float, ...] = (0.5,)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of the images the model takes."""
        return self.in_channels, self.image_size, self.image_size

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ArchSpec":
        fields = {key: data[key] for key in cls.__dataclass_fields__ if key in data}
        for key in ("mean", "std"):
            if key in fields:
                fields[key] = tuple(fields[key])
        return cls(**fields)


class Normalize(nn.Module):
    """(x - mean) / std per channel; x: (N, C, H, W) in [0, 1]."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def scaled(channels: int, width: float) -> int:
    return max(1, int(round(channels * width)))


class LeNet5(nn.Module):
    """conv5x5x6 - pool - conv5x5x16 - pool - dense 120-84-classes (61.7k parameters at 28 px, width 1)."""

    def __init__(self, spec: ArchSpec) -> None:
        super().__init__()
        c1, c2 = scaled(6, spec.width), scaled(16, spec.width)
        h1, h2 = scaled(120, spec.width), scaled(84, spec.width)
        padding = 2 if spec.image_size == 28 else 0  # the classic 32 px layout: 5x5 maps before the dense part
        spatial = ((spec.image_size + 2 * padding - 4) // 2 - 4) // 2
        self.normalize = Normalize(spec.mean, spec.std)
        self.features = nn.Sequential(
            nn.Conv2d(spec.in_channels, c1, 5, padding=padding), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 5), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(c2 * spatial * spatial, h1), nn.ReLU(),
            nn.Linear(h1, h2), nn.ReLU(), nn.Linear(h2, spec.num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(self.normalize(x)))


class PreActBlock(nn.Module):
    """Pre-activation residual block: BN-ReLU-conv3x3(stride)-BN-ReLU-conv3x3, 1x1 projection shortcut."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.shortcut = nn.Conv2d(in_channels, out_channels, 1, stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(x))
        shortcut = self.shortcut(out)
        out = self.conv1(out)
        out = self.conv2(torch.relu(self.bn2(out)))
        return out + shortcut


class ResNet8(nn.Module):
    """Stem conv3x3x32 stride 2, three pre-activation blocks 64/128/256 stride 2, GAP, dense."""

    def __init__(self, spec: ArchSpec) -> None:
        super().__init__()
        widths = [scaled(c, spec.width) for c in (32, 64, 128, 256)]
        self.normalize = Normalize(spec.mean, spec.std)
        self.stem = nn.Conv2d(spec.in_channels, widths[0], 3, 2, 1, bias=False)
        self.blocks = nn.Sequential(*(PreActBlock(widths[i], widths[i + 1], 2) for i in range(3)))
        self.bn = nn.BatchNorm2d(widths[3])
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(widths[3], spec.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.blocks(self.stem(self.normalize(x)))
        out = self.pool(torch.relu(self.bn(out)))
        return self.fc(torch.flatten(out, 1))


VGG11_LAYERS = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")


class VGG11(nn.Module):
    """VGG-11 with batch norm and a dense 2048-1024-classes head; pools that would empty the map are skipped."""

    def __init__(self, spec: ArchSpec) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels, size = spec.in_channels, spec.image_size
        for item in VGG11_LAYERS:
            if item == "M":
                if size >= 2:
                    layers.append(nn.MaxPool2d(2))
                    size //= 2
                continue
            out = scaled(int(item), spec.width)
            layers += [nn.Conv2d(channels, out, 3, padding=1, bias=False), nn.BatchNorm2d(out), nn.ReLU()]
            channels = out
        self.normalize = Normalize(spec.mean, spec.std)
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        hidden1, hidden2 = scaled(2048, spec.width), scaled(1024, spec.width)
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(channels, hidden1), nn.ReLU(),
            nn.Linear(hidden1, hidden2), nn.ReLU(), nn.Linear(hidden2, spec.num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.features(self.normalize(x))))


class BasicBlock(nn.Module):
    """torchvision's ResNet BasicBlock: conv3x3(stride)-BN-ReLU-conv3x3-BN, plus the input (1x1 conv-BN when the
    shape changes), then ReLU; x: (N, C_in, H, W) -> (N, C_out, H / stride, W / stride)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.downsample = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                                            nn.BatchNorm2d(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.downsample(x))


SMALL_INPUT = 64  # inputs up to this many pixels get stems that keep the resolution (CIFAR-style)


class ResNet18(nn.Module):
    """torchvision's ResNet-18: stem, BasicBlocks [2, 2, 2, 2] of 64-128-256-512 x width channels, GAP, dense.

    The stem is torchvision's conv7x7 stride 2 + max-pool 3x3 stride 2 above SMALL_INPUT px, and a conv3x3
    stride 1 without max-pool up to it (a 32 px input keeps 4x4 maps in the last stage instead of 1x1).
    """

    def __init__(self, spec: ArchSpec) -> None:
        super().__init__()
        widths = [scaled(c, spec.width) for c in (64, 128, 256, 512)]
        self.normalize = Normalize(spec.mean, spec.std)
        if spec.image_size <= SMALL_INPUT:
            self.conv1 = nn.Conv2d(spec.in_channels, widths[0], 3, 1, 1, bias=False)
            self.maxpool: nn.Module = nn.Identity()
        else:
            self.conv1 = nn.Conv2d(spec.in_channels, widths[0], 7, 2, 3, bias=False)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.bn1 = nn.BatchNorm2d(widths[0])
        stages, channels = [], widths[0]
        for index, out in enumerate(widths):
            stride = 1 if index == 0 else 2
            stages.append(nn.Sequential(BasicBlock(channels, out, stride), BasicBlock(out, out, 1)))
            channels = out
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, spec.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.maxpool(torch.relu(self.bn1(self.conv1(self.normalize(x)))))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        return self.fc(torch.flatten(self.avgpool(out), 1))


def make_divisible(value: float, divisor: int = 8) -> int:
    """torchvision's _make_divisible: the nearest multiple of `divisor`, never below 90 % of `value`."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def conv_bn_relu6(in_channels: int, out_channels: int, kernel: int, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU6())


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand (x expansion, skipped at 1)-BN-ReLU6, depthwise 3x3(stride)-BN-ReLU6, 1x1
    project-BN (linear); the input is added when stride 1 keeps the shape. x: (N, C_in, H, W) -> (N, C_out, H', W')."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = int(round(in_channels * expansion))
        self.use_residual = stride == 1 and in_channels == out_channels
        layers: list[nn.Module] = [conv_bn_relu6(in_channels, hidden, 1)] if expansion != 1 else []
        layers += [conv_bn_relu6(hidden, hidden, 3, stride, groups=hidden),
                   nn.Conv2d(hidden, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_residual else self.conv(x)


MOBILENET_V2_STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                       (6, 320, 1, 1))  # (expansion t, channels c, blocks n, first stride s)


class MobileNetV2(nn.Module):
    """torchvision's MobileNetV2: conv3x3 stride 2, inverted residuals (t, c, n, s), conv1x1 to 1280, GAP, dropout
    0.2, dense; channels x width rounded to multiples of 8. Up to SMALL_INPUT px the stem and the first stride-2
    stage use stride 1 (a 32 px input keeps 4x4 maps at the end instead of 1x1)."""

    def __init__(self, spec: ArchSpec) -> None:
        super().__init__()
        small = spec.image_size <= SMALL_INPUT
        channels = make_divisible(32 * spec.width)
        last = make_divisible(1280 * max(1.0, spec.width))
        layers: list[nn.Module] = [conv_bn_relu6(spec.in_channels, channels, 3, 1 if small else 2)]
        for index, (expansion, c, n, s) in enumerate(MOBILENET_V2_STAGES):
            out = make_divisible(c * spec.width)
            stride = 1 if small and index == 1 else s
            for block in range(n):
                layers.append(InvertedResidual(channels, out, stride if block == 0 else 1, expansion))
                channels = out
        layers.append(conv_bn_relu6(channels, last, 1))
        self.normalize = Normalize(spec.mean, spec.std)
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(last, spec.num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(self.normalize(x))), 1))


BUILDERS: dict[str, Callable[[ArchSpec], nn.Module]] = {  # one per evaluator.catalogue.ARCHITECTURES name
    "lenet5": LeNet5,
    "resnet8": ResNet8,
    "vgg11": VGG11,
    "resnet18": ResNet18,
    "mobilenetv2": MobileNetV2,
}
IMAGE_SIZES: dict[str, tuple[int, int]] = {"resnet18": (28, 224), "mobilenetv2": (28, 224)}  # (least, most) px
"""Square input sizes an architecture accepts (any in the range); the others take 28 or 32 px."""


MAX_WIDTH = 16.0  # a width multiplier past this is a typo, and its model would not fit in memory


def check_input_size(name: str, channels: int, size: int) -> None:
    """Architecture `name` takes images of `channels` x `size` x `size`: else an error naming what it takes."""
    if name not in BUILDERS:
        raise EvaluatorError(f"unknown architecture {name!r}: expected one of {', '.join(BUILDERS)}")
    least, most = IMAGE_SIZES.get(name, (28, 32))
    ranged = name in IMAGE_SIZES
    fits = least <= size <= most if ranged else size in (least, most)
    sizes = f"{least} to {most}" if ranged else f"{least} or {most}"
    if channels not in (1, 3) or not fits:
        raise EvaluatorError(f"{name} supports 1 or 3 channels and {sizes} px inputs, got {channels}x{size}")


def build_model(spec: ArchSpec) -> nn.Module:
    """A freshly initialised model of `spec` (seed torch before calling for reproducible weights)."""
    check_input_size(spec.name, spec.in_channels, spec.image_size)
    if len(spec.mean) != spec.in_channels or len(spec.std) != spec.in_channels:
        raise EvaluatorError(f"normalisation needs {spec.in_channels} mean/std values")
    if not 0 < spec.width <= MAX_WIDTH:  # also refuses NaN
        raise EvaluatorError(f"width must be a multiplier in (0, {MAX_WIDTH}], got {spec.width}")
    if not 2 <= spec.num_classes <= MAX_CLASSES:
        raise EvaluatorError(f"a classifier needs 2 to {MAX_CLASSES} classes, got {spec.num_classes}")
    if not all(math.isfinite(value) for value in spec.mean) or not all(math.isfinite(v) and v > 0 for v in spec.std):
        raise EvaluatorError("normalisation mean must be finite and std positive")
    return BUILDERS[spec.name](spec)


def final_classifier(model: nn.Module) -> nn.Linear:
    """The last Linear layer: its outputs are the classes, so pruning never touches them."""
    linears = [module for module in model.modules() if isinstance(module, nn.Linear)]
    return linears[-1]


def reshape_to_state(model: nn.Module, state: dict[str, torch.Tensor]) -> nn.Module:
    """Resize conv / linear / batch-norm layers to the shapes in `state` (a structurally pruned model)."""
    for name, module in model.named_modules():
        weight = state.get(f"{name}.weight")
        if weight is None:
            continue
        if isinstance(module, nn.Conv2d):
            if module.groups > 1 and module.groups == module.out_channels:  # depthwise: pruned with its input channels
                module.groups = int(weight.shape[0])
            module.out_channels, module.in_channels = int(weight.shape[0]), int(weight.shape[1]) * module.groups
        elif isinstance(module, nn.Linear):
            module.out_features, module.in_features = int(weight.shape[0]), int(weight.shape[1])
        elif isinstance(module, nn.BatchNorm2d):
            module.num_features = int(weight.shape[0])
        else:
            continue
        for key, tensor in module.named_parameters(recurse=False):
            setattr(module, key, nn.Parameter(torch.empty_like(state[f"{name}.{key}"])))
        for key, tensor in list(module.named_buffers(recurse=False)):
            if f"{name}.{key}" in state:
                module.register_buffer(key, torch.empty_like(state[f"{name}.{key}"]))
    return model
