"""The built documentation site, shared by the tests that read it."""

import os
import subprocess
import sys

import pytest

from tests.docs.tools import ROOT


@pytest.fixture(scope="session")
def site(tmp_path_factory):
    """Builds the site with `mkdocs build --strict` into a scratch folder;
    returns `(folder, build log)`. A failed build fails every test using it."""
    folder = tmp_path_factory.mktemp("site")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, env.get("PYTHONPATH")]))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--site-dir",
            str(folder),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    log = result.stdout + result.stderr
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{log[-4000:]}"
    return str(folder), log
