"""`recon init DIR`: the template copied and committed, ready to push."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from reconciler.cli.init_repo import TEMPLATE, InitError, init_repository
from reconciler.cli.main import cli


def test_init_copies_the_template_and_commits_it_on_main(tmp_path: Path) -> None:
    target = tmp_path / "shop"
    files = init_repository(target)
    expected = sorted(str(p.relative_to(TEMPLATE)) for p in TEMPLATE.rglob("*") if p.is_file())
    assert files == expected
    assert "web/deployment.yaml" in files and "jobs/report-cronjob.yaml" in files
    branch = subprocess.run(
        ["git", "-C", str(target), "branch", "--show-current"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert branch == "main"
    tracked = subprocess.run(
        ["git", "-C", str(target), "ls-files"], capture_output=True, text=True, check=True
    ).stdout.split()
    assert sorted(tracked) == expected
    clean = subprocess.run(
        ["git", "-C", str(target), "status", "--porcelain"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert clean == ""


def test_init_refuses_a_folder_with_files(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(InitError, match="not an empty folder"):
        init_repository(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_init_command_without_git(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["init", str(tmp_path / "plain"), "--no-git"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "plain" / "kustomization.yaml").exists()
    assert not (tmp_path / "plain" / ".git").exists()
    assert "git push recon main" in result.output


def test_init_command_reports_a_used_folder(tmp_path: Path) -> None:
    (tmp_path / "x").write_text("")
    result = CliRunner().invoke(cli, ["init", str(tmp_path)])
    assert result.exit_code == 1
    assert "exists and is not an empty folder" in result.output
