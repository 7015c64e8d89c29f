"""The pruning lab: the study's nine variants and torch-pruning's channel criteria, to exact rates."""
