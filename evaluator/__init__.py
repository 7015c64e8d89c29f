"""The evaluator: size, speed and adversarial robustness of pruned classifiers on the deployed ONNX graph."""

__version__ = "0.1.0"
