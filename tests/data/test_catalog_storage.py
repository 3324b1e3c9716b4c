"""A local catalog's warehouseDir is confined below the storage root (Settings.warehouse_root,
`SAILPLANE_STORAGE_ROOT`, default `<data dir>/warehouses`): its directory is handed to workloads,
so it can never be the data directory, the host's files, the root itself, or another catalog's
warehouse, whatever symlinks and '..' say."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sailplane.config import Settings
from sailplane.data.providers import LocalStorage, StorageError
from tests.data.helpers import build_org
from tests.jobs.helpers import unique_key
from tests.support.actors import Actor, assert_error

FIELD = "providerConfig.warehouseDir"


def local(name: str, team: str, warehouse: str | Path) -> dict[str, Any]:
    return {"name": name, "provider": "local", "teamIds": [team],
            "providerConfig": {"warehouseDir": str(warehouse), "defaultDatabase": "dev"}}


def refused(actor: Actor, body: dict[str, Any]) -> str:
    err = assert_error(actor.post("/data/catalogs", json=body), 422, "validation_failed")
    assert list(err["details"]["fieldErrors"]) == [FIELD], err
    return str(err["details"]["fieldErrors"][FIELD])


def test_warehouse_dir_outside_the_root_is_refused(api_url: str, settings: Settings) -> None:
    o = build_org(api_url)
    root = settings.warehouse_root
    root.mkdir(parents=True, exist_ok=True)
    escape = root / f"to-etc-{unique_key()}"
    escape.symlink_to("/etc")
    to_data = root / f"to-data-{unique_key()}"
    to_data.symlink_to(settings.data_dir)
    for where in (settings.data_dir, "/etc", "/", root, escape, escape / "sub", to_data / "secret.key",
                  settings.data_dir / "jobs", f"{root}/../escaped", "/tmp/elsewhere"):
        message = refused(o.dev1, local(f"bad-{unique_key()}", o.team1, where))
        assert f"below the storage root {root}" in message or "'..'" in message, (where, message)
    assert o.dev1.get("/data/catalogs").json()["total"] == 0

    # Below the root: created, and shown as given.
    good = root / unique_key("wh") / "tables"
    r = o.dev1.post("/data/catalogs", json=local(f"good-{unique_key()}", o.team1, good))
    assert r.status_code == 201, r.text
    catalog = r.json()
    assert catalog["providerConfig"]["warehouseDir"] == str(good)

    # An update is checked the same way, and a refused one changes nothing.
    path = f"/data/catalogs/{catalog['id']}"
    for where in ("/etc", escape, settings.data_dir):
        err = assert_error(o.dev1.patch(path, json={"providerConfig": {"warehouseDir": str(where)}}), 422)
        assert FIELD in err["details"]["fieldErrors"]
    assert o.dev1.get(path).json()["included"]["catalogs"][0]["providerConfig"]["warehouseDir"] == str(good)
    moved = root / unique_key("moved")
    r = o.dev1.patch(path, json={"providerConfig": {"warehouseDir": str(moved)}})
    assert r.status_code == 200 and r.json()["providerConfig"]["warehouseDir"] == str(moved), r.text


def test_a_warehouse_cannot_overlap_another_catalogs(api_url: str, settings: Settings) -> None:
    """Another team's (or organization's) catalog at the same place would read and write its tables."""
    o = build_org(api_url)
    mine = settings.warehouse_root / unique_key("shared") / "wh"
    r = o.dev1.post("/data/catalogs", json=local(f"c-{unique_key()}", o.team1, mine))
    assert r.status_code == 201, r.text
    outsider_team = o.outsider.post("/org/teams", json={"name": f"x-{unique_key()}"}).json()["team"]["id"]
    for where in (mine, mine.parent, mine / "inner"):
        for actor, team in ((o.dev2, o.team2), (o.outsider, outsider_team)):
            message = refused(actor, local(f"c-{unique_key()}", team, where))
            assert "another catalog" in message
    sibling = mine.parent / "sibling"
    assert o.dev2.post("/data/catalogs", json=local(f"c-{unique_key()}", o.team2, sibling)).status_code == 201


def test_the_data_directory_stays_out_even_below_a_wide_root(tmp_path: Path) -> None:
    """A root that contains the data directory (e.g. SAILPLANE_STORAGE_ROOT=/srv with data in
    /srv/sailplane) still never hands out the data directory or anything in it."""
    data_dir = tmp_path / "sailplane"
    (data_dir / "jobs").mkdir(parents=True)
    storage = LocalStorage(tmp_path, data_dir)
    for where in (data_dir, data_dir / "jobs", data_dir / "warehouses" / "x", tmp_path):
        with pytest.raises(StorageError):
            storage.confine(str(where))
    assert storage.confine(str(tmp_path / "lake" / "wh")) == tmp_path / "lake" / "wh"
    # The default root lies inside the data directory: below it is fine, the rest of it is not.
    default = LocalStorage(data_dir / "warehouses", data_dir)
    assert default.confine(str(data_dir / "warehouses" / "a")) == data_dir / "warehouses" / "a"
    with pytest.raises(StorageError):
        default.confine(str(data_dir / "jobs"))
