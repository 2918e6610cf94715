"""The template editor's help and checks, without a hub: every field the checker accepts
has help whose example passes and whose default is what the checker fills in; the example
to start from is a valid template in English and Chinese; saving names every problem at
once; deleted templates keep visible revisions that a new template can start from."""

import pytest
import yaml

from hub_ext import i18n
from hub_ext.catalog import fields, rules, store
from hub_ext.catalog.model import (COURSEWARE_FIELDS, DATASET_FIELDS, TEMPLATE_FIELDS, Catalog, load_catalog,
                                   parse_template)
from hub_ext.service import db
from hub_ext.service.template_pages import problem_items, yaml_problem

REQUIRED = {f.name: f.example for f in fields.TEMPLATE_HELP if f.required}


def test_every_field_the_checker_accepts_has_help_and_no_help_names_an_unknown_field():
    documented = [f.name for f in fields.FIELDS]
    accepted = [*TEMPLATE_FIELDS, *(f"datasets[].{k}" for k in DATASET_FIELDS),
                *(f"courseware.{k}" for k in COURSEWARE_FIELDS)]
    assert sorted(documented) == sorted(accepted)
    required = {**TEMPLATE_FIELDS, **{f"datasets[].{k}": v for k, v in DATASET_FIELDS.items()},
                **{f"courseware.{k}": v for k, v in COURSEWARE_FIELDS.items()}}
    assert {f.name: f.required for f in fields.FIELDS} == required


def test_each_example_passes_its_rule():
    parse_template(fields.example_data(), "example", "intro-python")
    dataset = {f.key: f.example for f in fields.DATASET_HELP}
    courseware = {f.key: f.example for f in fields.COURSEWARE_HELP}
    t = parse_template({**REQUIRED, "datasets": [dataset], "courseware": courseware}, "example", "intro-python")
    assert t.datasets[0].name == "iris" and t.courseware.repo == courseware["repo"]
    rules.identifier(fields.COURSE_HELP.example)


def test_each_stated_default_is_what_the_checker_fills_in():
    bare = parse_template(REQUIRED, "t", "intro-python")
    for f in fields.TEMPLATE_HELP:
        if not f.required and f.default is not None:
            explicit = parse_template({**REQUIRED, f.name: f.default}, "t", "intro-python")
            assert explicit == bare, f.name
    with_courseware = parse_template({**REQUIRED, "courseware": {"repo": "https://example.org/c.git"},
                                      "datasets": [{"name": "iris", "source": "/srv/goldenhub/datasets/iris"}]},
                                     "t", "intro-python")
    defaults = {f.name: f.default for f in fields.DATASET_HELP + fields.COURSEWARE_HELP if not f.required}
    assert with_courseware.courseware.branch == defaults["courseware.branch"]
    assert with_courseware.courseware.target == defaults["courseware.target"].replace("<course id>", "intro-python")
    assert with_courseware.datasets[0].target == "/home/jovyan/" + defaults["datasets[].target"].replace(
        "<name>", "iris")


@pytest.mark.parametrize("lang", ["en", "zh_CN"])
def test_the_example_is_a_valid_template_with_a_comment_on_every_field(lang):
    token = i18n.use(lang)
    try:
        text = fields.example_yaml()
        rows = fields.help_rows()
    finally:
        i18n._current.reset(token)
    data = yaml.safe_load(text)
    store._validate(data, "new-course", store.Policy(dataset_roots=("/srv/goldenhub/datasets",)))
    for f in fields.TEMPLATE_HELP:
        assert f"# {f.name}: " in text, f.name
    assert set(data) == {f.name for f in fields.TEMPLATE_HELP} - set(fields.COMMENTED_OUT)
    if lang == "zh_CN":  # the comments and the help are translated; field names and values are not
        for f in fields.FIELDS:
            assert i18n.translate(f.meaning, "zh_CN") != f.meaning, f.name
            assert i18n.translate(f.allowed, "zh_CN") != f.allowed, f.name
        assert i18n.translate(fields.TEMPLATE_HELP[0].meaning, "zh_CN") in text
        assert rows[0]["meaning"] == i18n.translate(fields.COURSE_HELP.meaning, "zh_CN")


def test_saving_names_every_problem_at_once_rules_and_policy_together(tmp_path):
    policy = store.Policy(image_prefixes=("goldenhub/",), dataset_roots=(str(tmp_path),))
    data = {**fields.example_data(), "cpu": 0, "memory": "lots", "image": "evil.example/miner:1",
            "datasets": [{"name": "iris", "source": "/var/lib/elsewhere/iris"}], "courseware": None}
    with pytest.raises(store.StoreError) as e:
        store._validate(data, "c", policy)
    items = problem_items(e.value.problems)
    assert [i["field"] for i in items] == ["cpu", "memory", "image", "datasets[0].source"]
    assert "got 0" in items[0]["message"] and "'lots'" in items[1]["message"]
    assert "not from an allowed registry" in items[2]["message"] and "outside the dataset roots" in items[3]["message"]


def test_a_new_template_with_a_wrong_course_id_gets_that_problem_with_the_others(tmp_path):
    sessions = db.open_database(f"sqlite:///{tmp_path / 'gh.sqlite'}")
    with sessions() as s, pytest.raises(store.StoreError) as e:
        store.create(s, Catalog(), "Not A Course", "", {**fields.example_data(), "gpus": -1, "datasets": []},
                     "admin", store.Policy())
    assert [i["field"] for i in problem_items(e.value.problems)] == ["course", "gpus"]


@pytest.fixture
def sessions(tmp_path):
    return db.open_database(f"sqlite:///{tmp_path / 'gh.sqlite'}")


NEW = {"id": "gone", "title": "Gone", "image": "goldenhub/x:1", "gpus": 0, "cpu": 1, "memory": "512M"}


def test_a_deleted_templates_revisions_stay_visible_and_a_new_one_starts_from_any(sessions):
    files, policy = Catalog(), store.Policy()
    with sessions() as s:
        store.create(s, files, "c", "", NEW, "admin", policy)
        store.update(s, files, "gone", {"memory": "640M"}, "admin", policy, "bigger")
        store.delete(s, files, "gone")
        assert [r.id for r in store.deleted(s)] == ["gone"]
        assert [r.number for r in store.revisions(s, "gone")] == [2, 1]
        assert store.revision_data(s, "gone", 1)["memory"] == "512M"
        [gone] = store.deleted_with_revisions(s)
        assert [(r["number"], r["comment"], r["template"]["memory"]) for r in gone["revisions"]] == [
            (2, "bigger", "640M"), (1, "created", "512M")]
        assert "+memory: 640M" in gone["revisions"][0]["diff"]
        with pytest.raises(store.StoreError):
            store.revision_data(s, "gone", 3)
        store.create(s, files, "c", "", store.revision_data(s, "gone", 1), "admin", policy, "from revision 1")
        assert store.deleted(s) == [] and store.get(s, files, "gone").current == 3
        assert store.current_data(s, store.get(s, files, "gone"))["memory"] == "512M"


def test_the_editor_replaces_the_whole_template_while_the_api_patches(sessions):
    files, policy = Catalog(), store.Policy()
    with sessions() as s:
        store.create(s, files, "c", "", {**NEW, "default_url": "/lab/tree"}, "admin", policy)
        store.update(s, files, "gone", {"cpu": 2}, "admin", policy)  # PATCH: the rest stays
        assert store.current_data(s, store.get(s, files, "gone"))["default_url"] == "/lab/tree"
        store.update(s, files, "gone", {k: v for k, v in NEW.items() if k != "id"}, "admin", policy,
                     replace_all=True)  # the editor's text without default_url: it is gone
        data = store.current_data(s, store.get(s, files, "gone"))
        assert "default_url" not in data and data["id"] == "gone" and data["cpu"] == 1


def test_a_file_template_is_named_by_its_file_never_its_path(tmp_path):
    (tmp_path / "files.yaml").write_text(yaml.safe_dump({"id": "files", "title": "F", "templates": [
        {**NEW, "id": "from-file"}]}))
    files = load_catalog(tmp_path)
    sessions = db.open_database(f"sqlite:///{tmp_path / 'gh.sqlite'}")
    with sessions() as s, pytest.raises(store.StoreError) as e:
        store.get(s, files, "from-file")
    assert "file files.yaml" in str(e.value) and str(tmp_path) not in str(e.value)


def test_unreadable_text_gets_one_sentence_with_the_line():
    with pytest.raises(yaml.YAMLError) as e:
        yaml.safe_load("id: x\nmemory: [1G\n")
    problem = yaml_problem(e.value)
    assert problem["field"] == "" and "line 3, column 1" in problem["message"]
    assert problem_items(["template: template.datasets[0].source: got 'x'; allowed: an absolute host path"]) == [
        {"field": "datasets[0].source", "message": "got 'x'; allowed: an absolute host path",
         "allowed": i18n.translate(fields.DATASET_HELP[1].allowed)}]
    assert problem_items(["The template is gone"]) == [{"field": "", "message": "The template is gone", "allowed": ""}]
