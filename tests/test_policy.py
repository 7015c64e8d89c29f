"""The sign-off gate: policy loading and validation, evaluation against a real and hand-made assessments, renderers."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rich.console import Console

from evaluator.errors import EvaluatorError
from evaluator.policy import Policy, Verdict, evaluate_policy, exit_code, load_policy, policy_from_toml
from evaluator.report.junit_report import verdict_junit
from evaluator.report.markdown_report import verdict_markdown
from evaluator.report.signoff import render_verdict_terminal
from evaluator.report.verdicts import verdict_to_dict
from evaluator.results import AttackResult, Check, LatencyStats, MinimalNormResult, ModelAssessment, ModelProfile, RuntimeChoice, WorstCase
from evaluator.stats import wilson_interval

from conftest import ROOT, ZOO_CHILD

EDGE = ROOT / "policies" / "edge.toml"

PASSING = """
[policy]
name = "ci"
require_checks = true

[[rule]]
metric = "clean_accuracy"
min = 0.85

[[rule]]
metric = "robust_accuracy"
norm = "Linf"
epsilon = "4/255"
min = 0.5

[[rule]]
metric = "latency_p99_ms"
batch = 8
provider = "cpu"
max = 1e6   # no wall-clock limit: the rule checks that batch 8 was timed on CPU

[[rule]]
metric = "size_bytes"
max = 262_144

[[rule]]
metric = "gzip_bytes"
max = 131_072

[[rule]]
metric = "accuracy_drop"
max = 0.05
"""

FAILING = """
[policy]
name = "strict"

[[rule]]
name = "clean accuracy"
metric = "clean_accuracy"
min = 0.95

[[rule]]
metric = "robust_accuracy"
norm = "Linf"
epsilon = "8/255"
min = 0.1

[[rule]]
metric = "latency_p99_ms"
batch = 1
provider = "cuda"
max = 1e6

[[rule]]
metric = "median_distance"
norm = "L2"
min = 0.1

[[rule]]
metric = "size_bytes"
max = 262_144
"""


def write(tmp_path: Path, text: str, name: str = "policy.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def zoo_model() -> ModelAssessment:
    """The real assessment of the zoo child, with the budgets and batch sizes the passing policy asks for."""
    from evaluator.assessment import AssessConfig, assess

    policy = policy_from_toml(PASSING)
    config = AssessConfig(samples=50, attacks=("apgd-ce-linf:steps=5", "square-linf:queries=50"), skip_latency=False,
                          epsilons=policy.epsilons()["Linf"], latency_batches=policy.latency_batches())
    return assess([ZOO_CHILD], config).models[0]


def attack_results(kinds: tuple[str, ...]) -> tuple[AttackResult, ...]:
    """The cascade behind the hand-made worst case at Linf 8/255, its attacks of the given kinds."""
    robust = np.arange(1000) < 244
    return tuple(AttackResult(name, "Linf", kind, 8 / 255, 1000, 0.88, 0.244, 880, 0, 0, None, None, {}, robust)
                 for name, kind in zip(("apgd-ce-linf", "apgd-t-linf", "square-linf"), kinds))


def hand_model(**changes: Any) -> ModelAssessment:
    """A hand-made assessment of one model (the zoo child's numbers). changes: ModelAssessment fields, or for short
    size_bytes / gzip_bytes (the profile), provider (the runtime used), median_l2=None (no L2 example found for most
    samples), kinds (of the three attacks behind the Linf worst case)."""
    fast = LatencyStats(1, 7215, 0.022, 0.039, 0.133, 0.03, 33_333.0)
    batch = LatencyStats(256, 52, 19.6, 24.2, 41.0, 20.0, 12_800.0)
    found = np.full(1000, np.inf) if changes.pop("median_l2", 0.91) is None else np.full(1000, 0.91)
    minimal = MinimalNormResult("fmn-l2", "L2", "white-box", 1000, 0.88, 880, 0, 0, float(np.median(found)), None, {}, found)
    profile = ModelProfile("5983" * 16, 85242, 63365, 15740, 15740, 133740, 2, 0)
    profile = replace(profile, **{key: changes.pop(key) for key in ("size_bytes", "gzip_bytes") if key in changes})
    runtime = RuntimeChoice("auto", changes.pop("provider", "CPUExecutionProvider"))
    model = ModelAssessment(
        path="models/lenet5_fmnist_filter-l1_cr4.onnx", dataset="fashion-mnist", profile=profile, runtime=runtime,
        latency=fast, throughput=batch, latency_by_batch=(fast, batch), clean_accuracy=0.8922,
        parent_clean_accuracy=0.9062, clean_samples=10000, minimal=(minimal,),
        attacks=attack_results(changes.pop("kinds", ("white-box", "white-box", "score"))),
        worst_case=(WorstCase("Linf", 8 / 255, 1000, 0.244, ("apgd-ce-linf", "apgd-t-linf", "square-linf"), 244),),
        checks=(Check("logits-output", True, "the outputs are logits"),
                Check("deterministic", True, "max |difference| between two identical runs: 0")),
        source=None, metadata=None)
    return replace(model, **changes)


def one_rule(text: str, model: ModelAssessment, header: str = "") -> Verdict:
    return evaluate_policy(policy_from_toml(f"{header}\n[[rule]]\n{text}"), model)


# --- against the real zoo assessment ------------------------------------------------------------------------------

def test_passing_policy_on_the_zoo_child(zoo_model: ModelAssessment, tmp_path: Path) -> None:
    policy = load_policy(write(tmp_path, PASSING))
    assert policy.latency_batches() == (8,) and policy.epsilons() == {"Linf": (4 / 255,)}
    verdict = evaluate_policy(policy, zoo_model)
    assert verdict.passed and exit_code([verdict]) == 0, [o.message for o in verdict.failures]
    measured = {o.metric: o.measured for o in verdict.outcomes}
    assert measured["clean_accuracy"] == zoo_model.clean_accuracy
    assert measured["robust_accuracy"] == zoo_model.worst_case[0].robust_accuracy
    assert measured["latency_p99_ms"] == next(s.p99_ms for s in zoo_model.latency_by_batch if s.batch_size == 8)
    assert measured["size_bytes"] == zoo_model.profile.size_bytes and measured["accuracy_drop"] == zoo_model.accuracy_drop
    assert measured["checks"] == 0 and verdict.outcomes[-1].name == "sanity checks"
    assert "worst case of apgd-ce-linf, square-linf on 50 samples" in verdict.outcomes[1].message
    assert verdict.sha256 == zoo_model.profile.sha256 and verdict.model_name == ZOO_CHILD.name


def test_failing_policy_on_the_zoo_child(zoo_model: ModelAssessment, tmp_path: Path) -> None:
    verdict = evaluate_policy(load_policy(write(tmp_path, FAILING)), zoo_model)
    assert not verdict.passed and exit_code([verdict]) == 1
    outcomes = {o.metric: o for o in verdict.outcomes}
    assert not outcomes["clean_accuracy"].passed and outcomes["clean_accuracy"].message.startswith("0.8922 < min 0.95")
    robust = outcomes["robust_accuracy"]  # the assessment attacked at 4/255 only: missing evidence fails
    assert not robust.passed and robust.measured is None and "no attack ran at Linf eps=8/255" in robust.message
    assert "Linf 0.01569" in robust.message
    latency = outcomes["latency_p99_ms"]
    assert not latency.passed and "needs CUDAExecutionProvider but the model ran on CPUExecutionProvider" in latency.message
    assert not outcomes["median_distance"].passed and "no minimal-norm attack in L2" in outcomes["median_distance"].message
    assert outcomes["size_bytes"].passed
    suites = ET.fromstring(verdict_junit(verdict))
    assert suites.get("tests") == "5" and suites.get("failures") == "4"
    cases = suites.findall("./testsuite/testcase")
    assert [case.get("name") for case in cases] == [o.name for o in verdict.outcomes]
    assert {case.get("classname") for case in cases} == {"evaluator.signoff.lenet5_fmnist_filter-l1_cr4"}
    failed = [case.get("name") for case in cases if case.find("failure") is not None]
    assert failed == [o.name for o in verdict.failures] and len(failed) == 4
    assert all(case.findtext("system-out", "").startswith("measured: ") for case in cases)


def test_edge_policy_ships_and_passes_the_zoo_child_numbers() -> None:
    policy = load_policy(EDGE)
    assert policy.name == "edge" and policy.require_checks and policy.path == str(EDGE)
    assert {rule.metric for rule in policy.rules} == {"clean_accuracy", "accuracy_drop", "robust_accuracy", "latency_p99_ms",
                                                      "size_bytes", "gzip_bytes"}
    assert policy.latency_batches() == (1,) and policy.epsilons() == {"Linf": (8 / 255,)}
    verdict = evaluate_policy(policy, hand_model())
    assert verdict.passed, [o.message for o in verdict.failures]
    parent = evaluate_policy(policy, hand_model(size_bytes=267_776, parent_clean_accuracy=None))
    assert [o.name for o in parent.failures] == ["accuracy lost to pruning", "model file size"]


# --- rules on hand-made assessments -------------------------------------------------------------------------------

@pytest.mark.parametrize("epsilon", ['"8/255"', '" 8 / 255 "', "0.0313725490196", "0.03137254901960784"])
def test_fraction_and_decimal_epsilons_match_the_measured_one(epsilon: str) -> None:
    verdict = one_rule(f'metric = "robust_accuracy"\nnorm = "linf"\nepsilon = {epsilon}\nmin = 0.22', hand_model())
    assert verdict.passed and verdict.outcomes[0].measured == 0.244
    assert "apgd-ce-linf, apgd-t-linf, square-linf on 1,000 samples" in verdict.outcomes[0].message


@pytest.mark.parametrize("epsilon", ['"8/256"', "0.0314", '"4/255"'])
def test_an_epsilon_the_assessment_did_not_run_fails(epsilon: str) -> None:
    verdict = one_rule(f'metric = "robust_accuracy"\nnorm = "Linf"\nepsilon = {epsilon}\nmin = 0.0', hand_model())
    outcome = verdict.outcomes[0]
    assert not verdict.passed and outcome.measured is None and outcome.measured_text == "not measured"
    assert "no attack ran at Linf" in outcome.message and "measured: Linf 0.03137" in outcome.message


def test_robust_accuracy_needs_the_same_norm() -> None:
    verdict = one_rule('metric = "robust_accuracy"\nnorm = "L2"\nepsilon = 0.03137254901960784\nmin = 0.0', hand_model())
    assert not verdict.passed and "no attack ran at L2" in verdict.outcomes[0].message


@pytest.mark.parametrize(("provider", "passed"), [("cpu", True), ("CPUExecutionProvider", True), ("cuda", False),
                                                  ("CUDAExecutionProvider", False), ("tensorrt", False)])
def test_latency_provider(provider: str, passed: bool) -> None:
    verdict = one_rule(f'metric = "latency_p99_ms"\nbatch = 256\nprovider = "{provider}"\nmax = 50', hand_model())
    assert verdict.passed is passed
    if not passed:
        assert "but the model ran on CPUExecutionProvider" in verdict.outcomes[0].message


def test_latency_without_provider_accepts_any_and_compares() -> None:
    model = hand_model(provider="CUDAExecutionProvider")
    assert one_rule('metric = "latency_p99_ms"\nbatch = 1\nmax = 0.2', model).passed
    failed = one_rule('metric = "latency_p99_ms"\nbatch = 256\nmax = 20', model)
    assert not failed.passed and failed.outcomes[0].message.startswith("41 ms > max 20 ms")


def test_missing_evidence_fails_with_the_reason() -> None:
    skipped = hand_model(latency=None, throughput=None, latency_by_batch=())
    outcome = one_rule('metric = "latency_p99_ms"\nbatch = 1\nmax = 1e6', skipped).outcomes[0]
    assert not outcome.passed and "latency was not measured" in outcome.message
    outcome = one_rule('metric = "latency_p99_ms"\nbatch = 64\nmax = 1e6', hand_model()).outcomes[0]
    assert not outcome.passed and "no latency at batch 64 (timed at batch 1, 256" in outcome.message
    no_parent = hand_model(parent_clean_accuracy=None)
    outcome = one_rule('metric = "accuracy_drop"\nmax = 1', no_parent).outcomes[0]
    assert not outcome.passed and "no parent model" in outcome.message
    outcome = one_rule('metric = "median_distance"\nnorm = "L2"\nmin = 0', hand_model(median_l2=None)).outcomes[0]
    assert not outcome.passed and "more than half of the samples" in outcome.message
    outcome = one_rule('metric = "median_distance"\nnorm = "L0"\nmax = 1e9', hand_model()).outcomes[0]
    assert not outcome.passed and "no minimal-norm attack in L0" in outcome.message
    outcome = one_rule('metric = "clean_accuracy"\nmin = 0', hand_model(clean_accuracy=float("nan"))).outcomes[0]
    assert not outcome.passed and outcome.measured is None


def test_median_distance_and_sizes() -> None:
    passed = one_rule('metric = "median_distance"\nnorm = "L2"\nmin = 0.5', hand_model())
    assert passed.passed and passed.outcomes[0].measured == 0.91 and "fmn-l2" in passed.outcomes[0].message
    gzip = one_rule('metric = "gzip_bytes"\nmax = 60_000', hand_model())
    assert not gzip.passed and gzip.outcomes[0].message == "63,365 B (61.9 KiB) > max 60,000 B (58.6 KiB)"


def test_thresholds_are_inclusive_with_float_rounding() -> None:
    assert one_rule('metric = "accuracy_drop"\nmax = 0.014', hand_model()).passed  # measured 0.014000000000000012
    assert one_rule('metric = "clean_accuracy"\nmin = 0.8922', hand_model()).passed
    assert not one_rule('metric = "clean_accuracy"\nmin = 0.8923', hand_model()).passed
    assert one_rule('metric = "size_bytes"\nmin = 85242', hand_model()).passed


def test_require_checks() -> None:
    header = "[policy]\nrequire_checks = true"
    rule = 'metric = "clean_accuracy"\nmin = 0.5'
    assert one_rule(rule, hand_model(), header).passed
    broken = hand_model()
    broken = replace(broken, checks=(*broken.checks, Check("source-agrees", False,
                                                           "source and deployed graph disagree on 3 of 50 inputs")))
    verdict = one_rule(rule, broken, header)
    checks = verdict.outcomes[-1]
    assert not verdict.passed and checks.name == "sanity checks" and checks.measured_text == "2/3 passed"
    assert checks.message == "source-agrees failed: source and deployed graph disagree on 3 of 50 inputs"
    assert one_rule(rule, broken).passed  # without require_checks the checks do not gate
    assert not one_rule(rule, hand_model(checks=()), header).passed
    only_checks = evaluate_policy(policy_from_toml(header), hand_model())
    assert only_checks.passed and len(only_checks.outcomes) == 1


# --- 95% intervals ------------------------------------------------------------------------------------------------

def test_a_threshold_inside_the_95_interval_is_said_and_the_verdict_stands() -> None:
    """The edge policy's robust min 0.22 lies inside the interval of 244 robust out of 1,000: a pass, but not a clear
    one; its clean min 0.88 lies below the interval of 8,922 out of 10,000: a clear pass."""
    verdict = evaluate_policy(load_policy(EDGE), hand_model())
    assert verdict.passed and exit_code([verdict]) == 0
    outcomes = {o.metric: o for o in verdict.outcomes}
    robust, clean = outcomes["robust_accuracy"], outcomes["clean_accuracy"]
    assert robust.interval == pytest.approx(wilson_interval(244, 1000)) and robust.threshold_within_interval is True
    assert robust.message == ("worst case of apgd-ce-linf, apgd-t-linf, square-linf on 1,000 samples; min 0.22 lies inside "
                              "the 95% interval 0.2184-0.2716 of the measured value: not a clear pass (decided on the "
                              "measured value)")
    assert clean.threshold_within_interval is False and clean.message == "on 10,000 test images; 95% interval 0.8860-0.8981"
    assert outcomes["size_bytes"].interval is None and outcomes["size_bytes"].threshold_within_interval is None
    assert verdict.within_interval == (robust,)
    data = verdict_to_dict(verdict)
    assert data["within_interval"] == 1 and data["passed"] is True
    robust_json = next(o for o in data["outcomes"] if o["metric"] == "robust_accuracy")
    assert robust_json["interval"] == pytest.approx(list(wilson_interval(244, 1000))) and robust_json["threshold_within_interval"]
    markdown = verdict_markdown(verdict)
    assert "| ✅ pass (within 95% interval) |" in markdown and "Passed, but not clearly" in markdown
    assert "| ✅ pass |" in markdown  # the clear ones


def test_a_failure_inside_the_interval_still_fails() -> None:
    verdict = one_rule('metric = "robust_accuracy"\nnorm = "Linf"\nepsilon = "8/255"\nmin = 0.26', hand_model())
    outcome = verdict.outcomes[0]
    assert not verdict.passed and exit_code([verdict]) == 1 and outcome.threshold_within_interval is True
    assert outcome.message.startswith("0.244 < min 0.26; worst case of") and outcome.message.endswith(
        "min 0.26 lies inside the 95% interval 0.2184-0.2716 of the measured value: not a clear failure (decided on the "
        "measured value)")
    clear = one_rule('metric = "robust_accuracy"\nnorm = "Linf"\nepsilon = "8/255"\nmin = 0.35', hand_model()).outcomes[0]
    assert not clear.passed and clear.threshold_within_interval is False and clear.message.endswith("95% interval 0.2184-0.2716")


def test_intervals_follow_the_sample_counts() -> None:
    """Fewer samples, wider intervals: 13 robust of 50 puts min 0.22 inside; 5,461 of 10,000 clean puts min 0.55 inside."""
    worst = replace(hand_model().worst_case[0], samples=50, robust_accuracy=0.26, robust_count=13)
    outcome = one_rule('metric = "robust_accuracy"\nnorm = "Linf"\nepsilon = "8/255"\nmin = 0.22',
                       hand_model(worst_case=(worst,))).outcomes[0]
    assert outcome.interval == pytest.approx(wilson_interval(13, 50)) and outcome.threshold_within_interval is True
    clean = one_rule('metric = "clean_accuracy"\nmin = 0.55', hand_model(clean_accuracy=0.5461)).outcomes[0]
    assert clean.interval == pytest.approx(wilson_interval(5461, 10_000)) and clean.threshold_within_interval is True
    size = one_rule('metric = "size_bytes"\nmax = 1e9', hand_model()).outcomes[0]
    assert size.interval is None and size.threshold_within_interval is None and size.message == ""


# --- malformed policies -------------------------------------------------------------------------------------------

RULE = '[[rule]]\nmetric = "clean_accuracy"\nmin = 0.85\n'
MALFORMED = {
    "bad toml": ("[[rule]\nmetric = 1", "not valid TOML"),
    "unknown top-level key": ('[[rules]]\nmetric = "clean_accuracy"\nmin = 0.9', "did you mean 'rule'"),
    "unknown policy key": ('[policy]\nnmae = "x"\n' + RULE, "unknown key in [policy] 'nmae'"),
    "policy not a table": ('policy = "x"\n' + RULE, "`policy` must be a table"),
    "policy name type": ("[policy]\nname = 3\n" + RULE, "name must be a string"),
    "require_checks type": ('[policy]\nrequire_checks = "yes"\n' + RULE, "require_checks must be a boolean"),
    "no rules": ('[policy]\nname = "x"', "has no [[rule]]"),
    "rule as a table": ('[rule]\nmetric = "clean_accuracy"\nmin = 0.9', "write each as [[rule]]"),
    "missing metric": ("[[rule]]\nmin = 0.9", "rule 1: missing `metric`"),
    "unknown metric": ('[[rule]]\nmetric = "clean_acc"\nmin = 0.9', "unknown metric 'clean_acc' (did you mean 'clean_accuracy'?)"),
    "metric type": ("[[rule]]\nmetric = 3\nmin = 0.9", "unknown metric 3"),
    "unknown key": ('[[rule]]\nmetric = "size_bytes"\nmax = 1\nunit = "KiB"', "unknown key 'unit'"),
    "key of another metric": ('[[rule]]\nmetric = "clean_accuracy"\nnorm = "Linf"\nmin = 0.9', "unknown key 'norm'"),
    "missing threshold": ('[[rule]]\nmetric = "clean_accuracy"', "missing threshold"),
    "min and max": ('[[rule]]\nmetric = "clean_accuracy"\nmin = 0.8\nmax = 0.9', "exactly one of `min` or `max`"),
    "threshold type": ('[[rule]]\nmetric = "clean_accuracy"\nmin = "0.9"', "`min` must be a finite number"),
    "threshold bool": ('[[rule]]\nmetric = "size_bytes"\nmax = true', "`max` must be a finite number"),
    "threshold nan": ('[[rule]]\nmetric = "size_bytes"\nmax = nan', "`max` must be a finite number"),
    "percent accuracy": ('[[rule]]\nmetric = "clean_accuracy"\nmin = 90', "shares in [0, 1] (0.9, not 90)"),
    "negative size": ('[[rule]]\nmetric = "size_bytes"\nmax = -1', "must not be negative"),
    "missing norm": ('[[rule]]\nmetric = "median_distance"\nmin = 1', "missing `norm`"),
    "missing epsilon": ('[[rule]]\nmetric = "robust_accuracy"\nnorm = "Linf"\nmin = 0.3', "missing `epsilon`"),
    "bad norm": ('[[rule]]\nmetric = "robust_accuracy"\nnorm = "L3"\nepsilon = 1\nmin = 0.3', "unknown norm 'L3'"),
    "norm type": ('[[rule]]\nmetric = "median_distance"\nnorm = 2\nmin = 0.3', "unknown norm 2"),
    "epsilon text": ('[[rule]]\nmetric = "robust_accuracy"\nnorm = "Linf"\nepsilon = "abc"\nmin = 0.3', "epsilon 'abc' is not a number"),
    "epsilon zero division": ('[[rule]]\nmetric = "robust_accuracy"\nnorm = "L2"\nepsilon = "1/0"\nmin = 0.3', "epsilon '1/0'"),
    "epsilon type": ('[[rule]]\nmetric = "robust_accuracy"\nnorm = "L2"\nepsilon = [1]\nmin = 0.3', "epsilon must be a number"),
    "epsilon negative": ('[[rule]]\nmetric = "robust_accuracy"\nnorm = "L2"\nepsilon = -0.5\nmin = 0.3', "positive finite"),
    "epsilon in 0-255 units": ('[[rule]]\nmetric = "robust_accuracy"\nnorm = "Linf"\nepsilon = 8\nmin = 0.3', "8/255, not 8"),
    "fractional L0": ('[[rule]]\nmetric = "robust_accuracy"\nnorm = "L0"\nepsilon = 2.5\nmin = 0.3', "whole number"),
    "missing batch": ('[[rule]]\nmetric = "latency_p99_ms"\nmax = 1', "missing `batch`"),
    "batch float": ('[[rule]]\nmetric = "latency_p99_ms"\nbatch = 1.5\nmax = 1', "`batch` must be a whole number >= 1"),
    "batch zero": ('[[rule]]\nmetric = "latency_p99_ms"\nbatch = 0\nmax = 1', "`batch` must be a whole number >= 1"),
    "batch too large": ('[[rule]]\nmetric = "latency_p99_ms"\nbatch = 1_000_000_000_000\nmax = 1',
                        "`batch` 1,000,000,000,000 is over the limit of 65,536 samples"),
    "bad provider": ('[[rule]]\nmetric = "latency_p99_ms"\nbatch = 1\nprovider = "gpu"\nmax = 1', "unknown provider 'gpu'"),
    "name type": ('[[rule]]\nmetric = "size_bytes"\nname = 3\nmax = 1', "`name` must be a non-empty string"),
    "duplicate names": (RULE + RULE, "rule 2 has the same name as rule 1"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_policies_give_one_clear_line(case: str, tmp_path: Path) -> None:
    text, expected = MALFORMED[case]
    path = write(tmp_path, text)
    with pytest.raises(EvaluatorError) as raised:
        load_policy(path)
    message = str(raised.value)
    assert expected in message and "\n" not in message and message.startswith(str(path))


def test_missing_unreadable_and_non_utf8_policy_files(tmp_path: Path) -> None:
    with pytest.raises(EvaluatorError, match="policy file not found"):
        load_policy(tmp_path / "absent.toml")
    with pytest.raises(EvaluatorError, match="is a folder"):
        load_policy(tmp_path)
    latin = tmp_path / "latin.toml"
    latin.write_bytes(b'[policy]\nname = "caf\xe9"\n')
    with pytest.raises(EvaluatorError, match="not UTF-8"):
        load_policy(latin)
    with pytest.raises(EvaluatorError, match="is not a regular file"):
        load_policy(Path("/dev/zero"))  # would read forever
    os.mkfifo(tmp_path / "fifo.toml")
    with pytest.raises(EvaluatorError, match="is not a regular file"):
        load_policy(tmp_path / "fifo.toml")  # would wait for a writer
    huge = tmp_path / "huge.toml"
    with open(huge, "wb") as handle:
        handle.write(b"# a comment, then zeros\n")
        handle.truncate(2 << 30)  # sparse: takes no disk
    with pytest.raises(EvaluatorError, match="2,147,483,648 bytes: a TOML file of at most 1,048,576 bytes"):
        load_policy(huge)


def test_range_with_two_named_rules_and_default_names() -> None:
    policy = policy_from_toml('[[rule]]\nmetric = "clean_accuracy"\nmin = 0.8\n[[rule]]\nmetric = "clean_accuracy"\nmax = 0.99\n'
                              '[[rule]]\nmetric = "robust_accuracy"\nnorm = "Linf"\nepsilon = "8/255"\nmin = 0.3\n'
                              '[[rule]]\nmetric = "latency_p99_ms"\nbatch = 4\nprovider = "cuda"\nmax = 2\n'
                              '[[rule]]\nmetric = "latency_p99_ms"\nbatch = 1\nmax = 2\n')
    assert [rule.name for rule in policy.rules] == [
        "clean_accuracy min", "clean_accuracy max", "robust_accuracy Linf eps=8/255 min",
        "latency_p99_ms batch=4 CUDA max", "latency_p99_ms batch=1 max"]
    assert policy.latency_batches() == (1, 4) and isinstance(policy, Policy)


# --- renderers ----------------------------------------------------------------------------------------------------

TRICKY = '''
[policy]
name = "edge <&> \\"quoted\\""
description = "a | b"

[[rule]]
name = "[bold]size[/bold] | <b>&amp; \\u0007bell"
metric = "size_bytes"
max = 1000

[[rule]]
name = "clean"
metric = "clean_accuracy"
min = 0.5
'''


def test_junit_escapes_and_parses_back() -> None:
    failing = evaluate_policy(policy_from_toml(TRICKY), hand_model())
    passing = evaluate_policy(policy_from_toml(RULE), hand_model(path="other/model.v2.onnx"))
    text = verdict_junit([failing, passing])
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    root = ET.fromstring(text)
    assert root.tag == "testsuites" and root.get("tests") == "3" and root.get("failures") == "1"
    first, second = root.findall("testsuite")
    assert first.get("name") == 'edge <&> "quoted": lenet5_fmnist_filter-l1_cr4.onnx'
    assert first.get("tests") == "2" and first.get("failures") == "1" and second.get("failures") == "0"
    case = first.find("testcase")
    assert case is not None and case.get("name") == "[bold]size[/bold] | <b>&amp; bell"  # the control character dropped
    failure = case.find("failure")
    assert failure is not None and failure.get("message", "").startswith("85,242 B (83.2 KiB) > max 1,000 B")
    assert case.findtext("system-out", "").startswith("measured: 85,242 B")
    assert second.find("testcase").get("classname") == "evaluator.signoff.model_v2"  # type: ignore[union-attr]
    properties = {p.get("name"): p.get("value") for p in first.iter("property")}
    assert properties["verdict"] == "FAIL" and properties["sha256"] == "5983" * 16


def test_markdown_has_heading_table_and_reasons() -> None:
    text = verdict_markdown(evaluate_policy(policy_from_toml(TRICKY), hand_model()))
    lines = text.splitlines()
    assert lines[0].startswith("### ❌ FAIL: lenet5\\_fmnist\\_filter-l1\\_cr4.onnx against sign-off policy edge &lt;&amp;&gt;")
    table = [line for line in lines if line.startswith("| ")]
    assert table[0] == "| rule | threshold | measured | result |" and len(table) == 3
    assert all(line.count("|") - line.count("\\|") == 5 for line in table)  # escaped pipes keep four columns
    assert "❌ fail" in table[1] and "✅ pass" in table[2] and "&lt;b&gt;" in table[1]
    assert any(line.startswith("- ") and "&gt; max 1,000 B" in line for line in lines)
    passing = verdict_markdown(evaluate_policy(policy_from_toml(RULE), hand_model()))
    assert passing.startswith("### ✅ PASS") and "rules failed" not in passing


def test_terminal_and_json() -> None:
    verdict = evaluate_policy(policy_from_toml(TRICKY), hand_model())
    console = Console(record=True, width=240)
    render_verdict_terminal(verdict, console)
    output = console.export_text()
    assert "[bold]size[/bold]" in output and "FAIL: lenet5_fmnist_filter-l1_cr4.onnx fails policy" in output
    assert "85,242 B (83.2 KiB)" in output and "1 of 2 rules passed" in output
    data = json.loads(json.dumps(verdict_to_dict(verdict), allow_nan=False))
    assert data["verdict"] == "FAIL" and data["passed"] is False and data["failures"] == 1 and data["rules"] == 2
    first = data["outcomes"][0]
    assert first["measured"] == 85242 and first["threshold"] == 1000 and first["comparator"] == "max" and not first["passed"]
    assert data["model"]["sha256"] == "5983" * 16 and data["policy"]["name"] == 'edge <&> "quoted"'
    missing = verdict_to_dict(one_rule('metric = "accuracy_drop"\nmax = 0.1', hand_model(parent_clean_accuracy=None)))
    assert missing["outcomes"][0]["measured"] is None and missing["outcomes"][0]["measured_text"] == "not measured"


def test_a_robustness_rule_needs_white_box_evidence() -> None:
    """Black-box attacks alone overstate robustness: the rule fails unless the policy accepts them."""
    rule = 'metric = "robust_accuracy"\nnorm = "Linf"\nepsilon = "8/255"\nmin = 0.2'
    black_box_only = hand_model(kinds=("score", "decision", "score"))
    outcome = one_rule(rule, black_box_only).outcomes[0]
    assert not outcome.passed and outcome.measured is None and outcome.measured_text == "no white-box evidence"
    assert outcome.message.startswith("only black-box attacks ran at Linf eps=8/255") and "black_box_evidence" in outcome.message
    accepted = one_rule(rule, black_box_only, "[policy]\nblack_box_evidence = true")
    assert accepted.passed and accepted.policy.to_dict()["black_box_evidence"] is True
    assert one_rule(rule, hand_model()).passed
    with pytest.raises(EvaluatorError, match="black_box_evidence must be a boolean"):
        policy_from_toml('[policy]\nblack_box_evidence = "yes"\n[[rule]]\n' + rule)
