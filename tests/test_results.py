"""The result types' JSON form: what to_dict writes, from_dict reads back to the same JSON."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from conftest import ZOO_CHILD
from evaluator.results import Assessment, AttackResult, MinimalNormResult, ModelAssessment, SCHEMA_VERSION


@pytest.fixture(scope="module")
def assessment() -> Assessment:
    """A real assessment with fixed-budget and minimal-norm attacks in two norms, latency and a cascade."""
    from evaluator.assessment import AssessConfig, assess

    config = AssessConfig(samples=40, attacks=("apgd-ce-linf:steps=5", "square-linf:queries=30", "fmn-l2:steps=10"),
                          epsilons_l2=(0.5,), latency_batches=(1, 4), throughput_batch=8)
    return assess([ZOO_CHILD], config)


def test_an_assessment_reads_back_to_the_same_json(assessment: Assessment) -> None:
    data = json.loads(json.dumps(assessment.to_dict()))  # what a file holds
    again = Assessment.from_dict(data)
    assert json.loads(json.dumps(again.to_dict())) == data
    model, original = again.models[0], assessment.models[0]
    assert model.profile == original.profile and model.latency == original.latency and model.checks == original.checks
    assert model.attacks == original.attacks and model.worst_case == original.worst_case
    for read, made in zip(model.attacks, original.attacks):
        assert np.array_equal(read.robust, made.robust) and np.array_equal(read.outcome, made.outcome)
    for read_minimal, made_minimal in zip(model.minimal, original.minimal):
        assert np.array_equal(read_minimal.distances, made_minimal.distances)
    assert model.median_distances() == original.median_distances()
    assert np.array_equal(model.attacked.indices, original.attacked.indices)
    assert again.config.cascade is assessment.config.cascade


def test_each_result_type_reads_its_own_json(assessment: Assessment) -> None:
    model = assessment.models[0]
    for result in model.attacks:
        assert AttackResult.from_dict(result.to_dict()).to_dict() == result.to_dict()
    for minimal in model.minimal:
        assert MinimalNormResult.from_dict(minimal.to_dict()).to_dict() == minimal.to_dict()
    assert ModelAssessment.from_dict(model.to_dict()).to_dict() == model.to_dict()


def test_a_minimal_result_without_any_adversarial_example(assessment: Assessment) -> None:
    minimal = assessment.models[0].minimal[0]
    none_found = replace(minimal, distances=np.full(minimal.samples, np.inf), median_distance=float("inf"))
    data = none_found.to_dict()
    assert data["median_distance"] is None and set(data["distances"]) == {None}
    assert MinimalNormResult.from_dict(data).to_dict() == data


def test_another_schema_version_is_refused_by_name(assessment: Assessment) -> None:
    data: dict[str, Any] = {**assessment.to_dict(), "schema_version": "1.1"}
    with pytest.raises(ValueError, match=f"schema version 1.1, this evaluator reads 1.2, 1.3, 1.4 and {SCHEMA_VERSION}"):
        Assessment.from_dict(data)


def test_progress_steps_count_what_assess_reports() -> None:
    """AssessConfig.progress_steps (the CLI's bar) equals the steps `assess` reports."""
    from evaluator.assessment import AssessConfig, assess

    from conftest import ZOO_PARENT

    config = AssessConfig(samples=10, attacks=("square-linf:queries=5", "fmn-l2:steps=2"), epsilons=(4 / 255, 8 / 255),
                          throughput_batch=4)
    for skip_latency in (False, True):
        steps: list[str] = []
        assess([ZOO_PARENT, ZOO_CHILD], replace(config, skip_latency=skip_latency), steps.append)
        assert len(steps) == replace(config, skip_latency=skip_latency).progress_steps(2)
