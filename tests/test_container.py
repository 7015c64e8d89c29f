"""The container image: what the Dockerfile, install.sh, .dockerignore and the README's "Docker" section promise each
other (cheap, always run), and docker/smoke.sh, which builds the image and runs the README's commands in it (slow,
and only on request: it builds an image of 1.5 GB)."""

from __future__ import annotations

import os
import re
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONSTRAINTS = "constraints.txt"
SMOKE_SKIPPED = 77  # docker/smoke.sh: no working container engine
COMMAND = re.compile(r"^\s*((?:mkdir -p out && )?docker \S.*?)(?:\s+\|\| status=\$\?)?(?:\s+#.*)?$")


def read(name: str) -> str:
    return (ROOT / name).read_text()


def name_of(requirement: str) -> str:
    return re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].strip().lower().replace("_", "-")


def pip_installs(script: str) -> list[str]:
    """The pip install commands of a script (continued lines joined)."""
    return [line for line in script.replace("\\\n", " ").splitlines() if re.search(r"\bpip install\b", line)]


def test_constraints_pin_every_runtime_dependency_and_leave_the_test_extras_free() -> None:
    pins = {name_of(line): line.split("==")[1] for line in read(CONSTRAINTS).splitlines()
            if line.strip() and not line.startswith("#")}
    project = tomllib.loads(read("pyproject.toml"))["project"]
    extras = project["optional-dependencies"]
    runtime = project["dependencies"] + extras["cpu"] + extras["gpu"] + extras["torch"] + extras["report"]
    assert {name_of(requirement) for requirement in runtime} <= set(pins)
    assert not {name_of(requirement) for requirement in extras["dev"]} & set(pins)
    assert pins["torch"] == "2.13.0"


def test_the_dockerfile_and_install_sh_install_with_the_same_constraints() -> None:
    dockerfile, install = read("Dockerfile"), read("install.sh")
    assert f"COPY {CONSTRAINTS} " in dockerfile
    for line in pip_installs(dockerfile):
        assert f"-c {CONSTRAINTS}" in line, line
    # every install but pip itself and torchattacks (a test-only reference installed without its dependencies)
    pinned = [line for line in pip_installs(install) if "--upgrade pip" not in line and "--no-deps" not in line]
    assert len(pinned) == 2
    for line in pinned:
        assert f"-c {CONSTRAINTS}" in line, line


def test_dockerignore_keeps_local_artefacts_out_and_the_zoo_and_wheels_in() -> None:
    patterns = [line.strip() for line in read(".dockerignore").splitlines() if line.strip() and not line.startswith("#")]
    assert {".git", ".venv", "runs", "results", "**/__pycache__"} <= set(patterns)
    assert not [pattern for pattern in patterns if pattern.startswith(("docker", "models", "policies", "sweeps"))
                and not pattern.startswith(("models/resnet8", "models/vgg11"))]
    assert patterns.index("!models/*.onnx") > patterns.index("**/*.onnx")
    assert "*.whl" in (ROOT / "docker" / "wheels" / ".gitignore").read_text().split()


def test_the_image_holds_the_zoo_policies_and_sweeps_and_runs_as_a_non_root_user() -> None:
    final_stage = read("Dockerfile").split("\nFROM ")[-1]
    for folder in ("models", "policies", "sweeps"):
        assert f"\nCOPY {folder} {folder}\n" in final_stage
    assert "\nWORKDIR /app\n" in final_stage  # so that policies/edge.toml resolves as in the README
    assert "useradd --create-home --uid 10001 evaluator" in final_stage
    assert "\nUSER evaluator\n" in final_stage
    assert "dataset-fashion-mnist" in final_stage


def readme_docker_commands() -> set[str]:
    section = read("README.md").split("\n## Docker\n")[1].split("\n## ")[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    return {match[1] for block in blocks for line in block.splitlines() if (match := COMMAND.match(line))}


def smoke_commands(image: str, runtime: str) -> set[str]:
    lines = [match[1] for line in read("docker/smoke.sh").splitlines() if (match := COMMAND.match(line))]
    return {line.replace('"$image"', image).replace('"$runtime"', runtime) for line in lines}


def test_the_readme_shows_the_commands_the_smoke_test_runs() -> None:
    cpu = {line for line in smoke_commands("evaluator", "cpu") if "--gpus" not in line}
    gpu = {line for line in smoke_commands("evaluator:gpu", "gpu") if "--gpus" in line or " build " in line}
    assert len(cpu) == 3 and len(gpu) == 2
    assert readme_docker_commands() == cpu | gpu


@pytest.mark.slow
def test_the_image_builds_and_passes_docker_smoke_sh() -> None:
    if not os.environ.get("EVALUATOR_CONTAINER_SMOKE"):
        pytest.skip("docker/smoke.sh builds the CPU image (minutes, 1.5 GB): set EVALUATOR_CONTAINER_SMOKE=1 to run it")
    done = subprocess.run(["bash", "docker/smoke.sh"], cwd=ROOT, capture_output=True, text=True, timeout=3600,
                          check=False)
    output = done.stdout + done.stderr
    if done.returncode == SMOKE_SKIPPED:
        pytest.skip(output.strip().splitlines()[-1])
    assert done.returncode == 0, output[-4000:]
    assert "smoke: passed" in done.stdout
