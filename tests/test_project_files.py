"""What the project's files claim agrees with what CI runs and with each other.

pyproject.toml's classifiers, tox.ini's environments and the suites of ``.ci/run``
name the same Python and Django series; the documentation site's address is the one
the package metadata gives.
"""

from __future__ import annotations

import configparser
import itertools
import re
import tomllib

from packaging.requirements import Requirement

from tests.processes import REPO_ROOT

PROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text("utf-8"))["project"]
CI = (REPO_ROOT / ".ci" / "run").read_text(encoding="utf-8")
MKDOCS = (REPO_ROOT / "mkdocs.yml").read_text(encoding="utf-8")


def classified(prefix: str) -> set[str]:
    """The versions the classifiers name after ``prefix``, e.g. ``{"3.11", "3.12"}``."""
    return {
        classifier.removeprefix(prefix)
        for classifier in PROJECT["classifiers"]
        if classifier.startswith(prefix) and "." in classifier.removeprefix(prefix)
    }


def ci_suites() -> set[tuple[str, str]]:
    """(Python, Django) of each ``run_suite`` of .ci/run, from the suite's label."""
    return {
        (f"3.{python}", f"{django[0]}.{django[1:]}")
        for python, django in re.findall(r"^run_suite py3(\d+)-django(\d+) ", CI, re.M)
    }


def tox_envs() -> set[tuple[str, str]]:
    """(Python, Django) of each ``py3X-djangoYZ`` environment tox.ini lists."""
    parser = configparser.ConfigParser()
    parser.read(REPO_ROOT / "tox.ini", encoding="utf-8")
    envs = set()
    for line in parser["tox"]["env_list"].split():
        # One level of braces, as tox.ini uses: py3{11,12}-django{52,60}.
        parts = re.split(r"\{([^}]*)\}", line)
        choices = [part.split(",") if i % 2 else [part] for i, part in enumerate(parts)]
        for name in map("".join, itertools.product(*choices)):
            found = re.fullmatch(r"py3(\d+)-django(\d)(\d+)", name)
            if found is not None:
                envs.add((f"3.{found[1]}", f"{found[2]}.{found[3]}"))
    return envs


def mkdocs_setting(name: str) -> str:
    found = re.search(rf"^{name}: (\S+)$", MKDOCS, re.MULTILINE)
    assert found is not None, f"mkdocs.yml sets no {name}"
    return found[1]


class TestSupportedVersions:
    def test_ci_runs_every_classified_python_and_django(self) -> None:
        """CI runs every Python and every Django series the classifiers claim, and no other."""
        suites = ci_suites()

        assert {python for python, _django in suites} == classified(
            "Programming Language :: Python :: "
        )
        assert {django for _python, django in suites} == classified(
            "Framework :: Django :: "
        )

    def test_tox_lists_only_what_ci_runs(self) -> None:
        """tox's environments cover CI's suites and claim no Python or Django CI does not run."""
        envs = tox_envs()
        suites = ci_suites()

        assert suites <= envs
        assert {python for python, _django in envs} == {p for p, _d in suites}
        assert {django for _python, django in envs} == {d for _p, d in suites}


class TestDocumentationSite:
    def test_site_url_is_the_documentation_url(self) -> None:
        """mkdocs.yml's site_url and repo_url are pyproject.toml's Documentation and Repository URLs."""
        urls = PROJECT["urls"]

        assert mkdocs_setting("site_url") == urls["Documentation"]
        assert mkdocs_setting("repo_url") == urls["Repository"]
        assert urls["Changelog"].startswith(urls["Documentation"])

    def test_the_docs_extra_installs_a_signature_formatter(self) -> None:
        """The docs extra installs Ruff, which mkdocstrings needs to wrap long signatures."""
        names = {
            Requirement(line).name for line in PROJECT["optional-dependencies"]["docs"]
        }

        assert "ruff" in names
        assert re.search(r"^ +line_length: \d+$", MKDOCS, re.MULTILINE)

    def test_extra_css_files_exist(self) -> None:
        """Every stylesheet mkdocs.yml adds is in docs/."""
        sheets = re.findall(r"^extra_css:\n((?:  - \S+\n)+)", MKDOCS, re.MULTILINE)

        assert sheets
        for path in re.findall(r"  - (\S+)", sheets[0]):
            assert (REPO_ROOT / "docs" / path).is_file(), path
