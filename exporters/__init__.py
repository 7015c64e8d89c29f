"""The PyTorch side of the evaluator: architectures, training, pruning and verified export."""
