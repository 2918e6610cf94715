"""Catalog validation: every bad course file is refused with a message that names the
file, the field, what was given and what is allowed."""

import textwrap
from pathlib import Path

import pytest

from hub_ext.catalog.model import CatalogError, load_catalog
from tests.helpers import goldenhub

GOOD = """\
id: course-a
title: Course A
templates:
  - id: tpl-a
    title: A
    image: goldenhub/course-a:1.0
    gpus: 0
    cpu: 1
    memory: 1G
    datasets:
      - name: data
        source: /srv/datasets/data
        target: datasets/data
    courseware:
      repo: https://example.org/course-a.git
"""


def write(tmp_path: Path, text: str, name: str = "course.yaml") -> Path:
    (tmp_path / name).write_text(textwrap.dedent(text))
    return tmp_path


def problems(tmp_path: Path) -> str:
    with pytest.raises(CatalogError) as e:
        load_catalog(tmp_path)
    return str(e.value)


def test_good_course_loads_with_defaults(tmp_path):
    catalog = load_catalog(write(tmp_path, GOOD))
    t = catalog.templates["tpl-a"]
    assert t.memory == 2**30 and t.shm_size == 64 * 2**20
    assert t.datasets[0].target == "/home/jovyan/datasets/data"
    assert t.courseware.branch == "main" and t.courseware.target == "course-a"
    assert t.default_url == "/lab" and t.groups == ()


# (replace in GOOD, replacement, text expected in the message)
BAD = {
    "missing field": ("    image: goldenhub/course-a:1.0\n", "", "templates[0].image: missing (required)"),
    "gpus not a number": ("gpus: 0", "gpus: two", "templates[0].gpus: got 'two'; allowed: a whole number from 0"),
    "negative gpus": ("gpus: 0", "gpus: -1", "gpus: got -1; allowed: a whole number from 0 (CPU only) to 16"),
    "huge gpus": ("gpus: 0", "gpus: 1000", "gpus: got 1000; allowed"),
    "gpus as bool": ("gpus: 0", "gpus: true", "gpus: got True"),
    "cpu zero": ("cpu: 1", "cpu: 0", "cpu: got 0; allowed: a number of CPUs above 0"),
    "memory unit": ("memory: 1G", "memory: lots", "memory: got 'lots'; allowed: a size from 128M to 4T"),
    "unknown key": ("    gpus: 0\n", "    gpus: 0\n    privileged: true\n",
                    "templates[0].privileged: unknown field; allowed fields: id, title"),
    "unknown course key": ("title: Course A\n", "title: Course A\nowner: bob\n", "course.yaml: owner: unknown field"),
    "image with spaces": ("goldenhub/course-a:1.0", "goldenhub/course a:1.0", "image: got 'goldenhub/course a:1.0'; allowed: a Docker image reference"),
    "image uppercase": ("goldenhub/course-a:1.0", "GoldenHub/Course", "image: got 'GoldenHub/Course'"),
    "dataset source relative": ("source: /srv/datasets/data", "source: data/mnist", "datasets[0].source: got 'data/mnist'; allowed: an absolute host path"),
    "dataset source docker socket": ("source: /srv/datasets/data", "source: /var/run/docker.sock", "may not be /, system directories"),
    "dataset source root": ("source: /srv/datasets/data", "source: /", "datasets[0].source: got '/'"),
    "mount target outside home": ("target: datasets/data", "target: /etc/data", "datasets[0].target: got '/etc/data', which is outside the home"),
    "mount target escaping home": ("target: datasets/data", "target: ../../etc", "which is outside the home"),
    "git url leading dash": ("https://example.org/course-a.git", "--upload-pack=touch /tmp/x", "courseware.repo: got '--upload-pack=touch /tmp/x': a URL may not start with '-'"),
    "git file url": ("https://example.org/course-a.git", "file:///etc", "courseware.repo: got 'file:///etc'; allowed: a URL with scheme https://, http://, git://, ssh://"),
    "git ext url": ("https://example.org/course-a.git", "'ext::sh -c touch% /tmp/pwned'", "git transport helpers (ext::, fd::) are not allowed"),
    "git branch option": ("      repo: https://example.org/course-a.git\n",
                          "      repo: https://example.org/course-a.git\n      branch: --force\n", "courseware.branch: got '--force'"),
    "bad id": ("id: tpl-a", "id: Tpl_A!", "templates[0].id: got 'Tpl_A!'; allowed: 1-40 lowercase letters"),
    "templates empty": (GOOD[GOOD.index("templates:"):], "templates: []\n", "templates: expected a non-empty list"),
    "not a mapping": (GOOD, "- just\n- a list\n", "course.yaml: : expected a mapping of fields, got a list"),
    "invalid yaml": ("title: Course A", "title: [unclosed", "course.yaml: line "),
    "shm larger than memory": ("memory: 1G", "memory: 1G\n    shm_size: 2G", "shm_size: must not be larger than memory"),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_bad_input_is_refused_with_its_message(tmp_path, case):
    old, new, expected = BAD[case]
    assert old in GOOD
    message = problems(write(tmp_path, GOOD.replace(old, new, 1)))
    assert expected in message
    assert str(tmp_path / "course.yaml") in message


def test_duplicate_template_ids_across_files_name_both_files(tmp_path):
    write(tmp_path, GOOD, "a.yaml")
    write(tmp_path, GOOD.replace("id: course-a", "id: course-b"), "b.yaml")
    message = problems(tmp_path)
    assert "duplicate template id 'tpl-a'" in message
    assert str(tmp_path / "a.yaml") in message and str(tmp_path / "b.yaml") in message


def test_every_problem_of_a_file_is_reported_at_once(tmp_path):
    bad = GOOD.replace("gpus: 0", "gpus: -3").replace("cpu: 1", "cpu: none")
    message = problems(write(tmp_path, bad))
    assert "gpus: got -3" in message and "cpu: got 'none'" in message


def test_groups_scope_templates(tmp_path):
    write(tmp_path, GOOD.replace("    gpus: 0\n", "    gpus: 0\n    groups: [ml-101]\n"))
    catalog = load_catalog(tmp_path)
    assert catalog.templates_for(set()) == []
    assert [t.id for t in catalog.templates_for({"ml-101"})] == ["tpl-a"]


def test_cli_validate_accepts_the_sample_courses():
    result = goldenhub("courses", "validate")
    assert result.returncode == 0, result.stderr
    assert "intro-python/intro-python-cpu" in result.stdout
    assert "deep-learning/deep-learning-gpu" in result.stdout


def test_cli_validate_exits_nonzero_on_a_bad_file(tmp_path):
    write(tmp_path, GOOD.replace("gpus: 0", "gpus: -1"))
    result = goldenhub("courses", "validate", str(tmp_path))
    assert result.returncode == 1
    assert "gpus: got -1" in result.stderr


def test_courseware_scheme_allowlist_is_configurable(tmp_path):
    write(tmp_path, GOOD.replace("https://example.org/course-a.git", "git://example.org/course-a.git"))
    assert load_catalog(tmp_path)  # git:// is allowed by default
    with pytest.raises(CatalogError, match="allowed: a URL with scheme https://"):
        load_catalog(tmp_path, git_schemes=("https",))
