"""The conda environment and the pip metadata must describe the same dependencies."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _pyproject_requirements() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        reqs += extra
    return {_name(r): r.replace(" ", "") for r in reqs}


def _conda_pip_requirements() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_block = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    return {_name(r): r.replace(" ", "") for r in pip_block if not r.startswith("-e")}


def test_environment_yml_and_pyproject_name_the_same_packages_and_pins():
    assert _conda_pip_requirements() == _pyproject_requirements()


def test_environment_yml_installs_the_package_itself_and_pins_python():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_block = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert "-e ." in pip_block
    python = [d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python")]
    required = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert python == ["python=3.11"] and required == ">=3.11"


def test_torch_is_pinned_to_the_cpu_wheel_version():
    assert _pyproject_requirements()["torch"] == "torch==2.13.0"
