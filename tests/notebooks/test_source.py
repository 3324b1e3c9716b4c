"""The notebook's marimo source (beyond the seed): the template, download, replacement, revisions and
restore; bad uploads change nothing."""

from __future__ import annotations

import ast

from sailplane.config import Settings
from tests.notebooks.helpers import build_org, db_rows, make_config, make_notebook
from tests.support.actors import Actor, assert_error
from tests.support.world import add_to_team, create_member

SPARK_SESSION = 'spark = SparkSession.builder.remote(os.environ["SPARK_REMOTE"]).getOrCreate()'


def _source(actor: Actor, nid: str) -> str:
    r = actor.get(f"/workloads/notebooks/{nid}/source")
    assert r.status_code == 200, r.text
    return r.text


def _revisions(actor: Actor, nid: str, **params: int) -> dict[str, object]:
    r = actor.get(f"/workloads/notebooks/{nid}/source/revisions", params=params)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def test_a_new_notebook_starts_from_a_marimo_app_with_a_spark_session(api_url: str) -> None:
    o = build_org(api_url)
    nid = make_notebook(o.dev1, make_config(o.dev1, o.team1), name="Daily Sales Analysis",
                        teamIds=[o.team1])["item"]["notebookId"]
    r = o.viewer1.get(f"/workloads/notebooks/{nid}/source")  # team members read it too
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/x-python; charset=utf-8"
    assert r.headers["content-disposition"] == 'attachment; filename="Daily_Sales_Analysis.py"'
    module = ast.parse(r.text)  # valid Python
    assert "import marimo" in r.text and "app = marimo.App()" in r.text
    cells = [node for node in module.body if isinstance(node, ast.FunctionDef)
             and any(ast.unparse(d) == "app.cell" for d in node.decorator_list)]
    assert len(cells) == 2
    first, second = (ast.get_source_segment(r.text, c) or "" for c in cells)
    assert "from pyspark.sql import SparkSession" in first and SPARK_SESSION in first
    assert "spark.sql(" in second and "def _(spark)" in second
    assert _revisions(o.dev1, nid) == {"total": 0, "items": []}


def test_replace_revisions_and_restore(api_url: str) -> None:
    o = build_org(api_url)
    nid = make_notebook(o.dev1, make_config(o.dev1, o.team1), teamIds=[o.team1])["item"]["notebookId"]
    template = _source(o.dev1, nid)
    first = "import marimo\n\napp = marimo.App()\n# première version\n"
    r = o.dev1.put(f"/workloads/notebooks/{nid}/source", content=first.encode(),
                   headers={"Content-Type": "text/x-python"})
    assert r.status_code == 200, r.text
    info = r.json()
    assert set(info) == {"notebookId", "size", "updatedAt", "updatedBy", "revisionId"}
    assert (info["notebookId"], info["size"], info["updatedBy"]) == (nid, len(first.encode()), o.dev1.member_id)
    assert _source(o.dev1, nid) == first
    # A developer of a team it is shared with edits too; the revision says who replaced what.
    teammate = create_member(o.owner)
    add_to_team(o.owner, o.team1, teammate)
    second = "import marimo\napp = marimo.App()\n"
    again = o.dev1.put(f"/workloads/notebooks/{nid}/source", content=second.encode()).json()
    assert o.dev1.put(f"/workloads/notebooks/{nid}/source", content=second.encode()).json()["revisionId"] is None
    listed = _revisions(o.viewer1, nid)
    assert listed["total"] == 2
    items = listed["items"]
    assert isinstance(items, list)
    assert [i["id"] for i in items] == [again["revisionId"], info["revisionId"]]  # newest first
    assert set(items[0]) == {"id", "notebookId", "size", "createdAt", "createdBy"}
    assert [i["size"] for i in items] == [len(first.encode()), len(template.encode())]
    assert all(i["createdBy"] == o.dev1.member_id for i in items)
    old = o.viewer1.get(f"/workloads/notebooks/{nid}/source/revisions/{info['revisionId']}")
    assert old.status_code == 200 and old.text == template
    assert old.headers["content-disposition"] == f'attachment; filename="Daily_Sales_Analysis-{info["revisionId"]}.py"'
    # Restoring the template: the replaced source becomes a revision too.
    restored = o.dev1.post(f"/workloads/notebooks/{nid}/source/revisions/{info['revisionId']}/restore")
    assert restored.status_code == 200, restored.text
    assert _source(o.dev1, nid) == template
    newest = _revisions(o.dev1, nid)
    assert newest["total"] == 3
    assert newest["items"][0]["id"] == restored.json()["revisionId"]  # type: ignore[index]
    kept = o.dev1.get(f"/workloads/notebooks/{nid}/source/revisions/{restored.json()['revisionId']}")
    assert kept.text == second
    assert o.dev1.get(f"/workloads/notebooks/{nid}/source/revisions", params={"limit": 1}).json()["total"] == 3
    # The teammate (a Developer of team1) may edit; a Viewer may not; other teams do not see it.
    assert teammate.put(f"/workloads/notebooks/{nid}/source", content=b"# teammate\n").status_code == 200
    assert_error(o.viewer1.put(f"/workloads/notebooks/{nid}/source", content=b"# viewer\n"), 403)
    assert_error(o.viewer1.post(f"/workloads/notebooks/{nid}/source/revisions/{info['revisionId']}/restore"), 403)
    for outsider in (o.dev2, o.outsider):
        assert_error(outsider.get(f"/workloads/notebooks/{nid}/source"), 404)
        assert_error(outsider.put(f"/workloads/notebooks/{nid}/source", content=b"# x\n"), 404)
        assert_error(outsider.get(f"/workloads/notebooks/{nid}/source/revisions"), 404)
        assert_error(outsider.get(f"/workloads/notebooks/{nid}/source/revisions/{info['revisionId']}"), 404)
    assert _source(o.dev1, nid) == "# teammate\n"
    other = make_notebook(o.dev1, make_config(o.dev1, o.team1))["item"]["notebookId"]
    assert_error(o.dev1.get(f"/workloads/notebooks/{other}/source/revisions/{info['revisionId']}"), 404)
    assert_error(o.dev1.post(f"/workloads/notebooks/{other}/source/revisions/{info['revisionId']}/restore"), 404)
    assert_error(o.dev1.get(f"/workloads/notebooks/{nid}/source/revisions/ZZZZZZZZZZZZZZZZZZZZ"), 404)


def test_bad_uploads_change_nothing(api_url: str, settings: Settings) -> None:
    o = build_org(api_url)
    nid = make_notebook(o.dev1, make_config(o.dev1, o.team1))["item"]["notebookId"]
    template = _source(o.dev1, nid)
    too_big = b"#" * (1024 * 1024) + b"\n"
    err = assert_error(o.dev1.put(f"/workloads/notebooks/{nid}/source", content=too_big), 413, "source_too_large")
    assert "1048576" in err["message"]
    err = assert_error(o.dev1.put(f"/workloads/notebooks/{nid}/source", content=b"x = '\xff\xfe'\n"), 422)
    assert "UTF-8" in err["details"]["fieldErrors"]["body"]
    assert_error(o.dev1.put(f"/workloads/notebooks/{nid}/source", content=b"x = 1\x00\n"), 422)
    assert _source(o.dev1, nid) == template and _revisions(o.dev1, nid)["total"] == 0
    [row] = db_rows(settings.database_url, "SELECT source FROM notebooks WHERE id = :id", id=nid)
    assert row["source"] == template
    exactly = b"#" * (1024 * 1024 - 1) + b"\n"  # the limit itself is fine
    assert o.dev1.put(f"/workloads/notebooks/{nid}/source", content=exactly).json()["size"] == 1024 * 1024


def test_at_most_fifty_revisions_are_kept(api_url: str) -> None:
    o = build_org(api_url)
    nid = make_notebook(o.dev1, make_config(o.dev1, o.team1))["item"]["notebookId"]
    for n in range(52):
        assert o.dev1.put(f"/workloads/notebooks/{nid}/source", content=f"# {n}\n".encode()).status_code == 200
    listed = _revisions(o.dev1, nid)
    assert listed["total"] == 50
    items = listed["items"]
    assert isinstance(items, list) and len(items) == 50
    newest, oldest = (o.dev1.get(f"/workloads/notebooks/{nid}/source/revisions/{items[i]['id']}").text
                      for i in (0, -1))
    assert (newest, oldest) == ("# 50\n", "# 1\n")  # the template and "# 0" were dropped
