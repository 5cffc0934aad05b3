"""The README's claims that code can check: every setting documented, the quick start intact."""
from pathlib import Path

from service.settings import documented_settings

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_every_setting_is_in_the_readme_table():
    for env, _, doc in documented_settings():
        assert f"| `{env}` |" in README, env
        assert f" | {doc} |" in README, f"{env}: the README's meaning differs from service/settings.py"


def test_quick_start_is_the_two_make_commands():
    quick_start = README.split("## Quick start")[1].split("##")[0]
    commands = [line.split("#")[0].strip() for line in quick_start.splitlines() if line.startswith("make ")]
    assert commands == ["make run", "make test"]


def test_ci_calls_the_readme_test_command():
    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text()
    assert "make test" in ci
