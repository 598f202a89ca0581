"""003 "Entity Type Management": ``GET /entities``, ``GET/PATCH/DELETE /entities/:id``, restore by status."""

from __future__ import annotations

from typing import Any

from tests.contract.conftest import Personize


def entity_types(pz: Personize) -> list[dict[str, Any]]:
    data = pz.get("/entities")
    assert isinstance(data, list), f"types.data must be EntityTypeResponse[]: {data}"  # 003 Quick Example
    return data


def by_slug(pz: Personize, slug: str) -> dict[str, Any]:
    for t in entity_types(pz):
        if str(t.get("slug") or t.get("name")).lower() == slug.lower():
            return t
    raise AssertionError(f"no entity type {slug}")


def custom_type(pz: Personize) -> str:
    # Set-up: the documents create custom types in the web app / collections; memrelay's POST /entities here.
    created = pz.post("/entities", {"name": "Student", "primaryKeyField": "studentNumber"})
    return str(created["id"])


def test_list_and_get_by_id(pz: Personize) -> None:
    contact = by_slug(pz, "contact")
    assert contact["isSystem"] is True and contact["id"], contact
    got = pz.get(f"/entities/{contact['id']}")
    assert got["id"] == contact["id"] and got["primaryKeyField"] == "email", got


def test_update_label_plural_icon_color_keys(pz: Personize) -> None:
    tid = by_slug(pz, "contact")["id"]
    patch = {"name": "Lead", "pluralLabel": "Leads", "icon": "user-plus", "color": "#4F46E5",
             "description": "A person we sell to.", "primaryKeyField": "email", "identifierColumn": "email"}
    pz.ok("PATCH", f"/entities/{tid}", patch)  # 003 Quick Example: client.entityTypes.update('act_xxx', {...})
    got = pz.get(f"/entities/{tid}")
    for key, value in patch.items():
        assert got[key] == value, (key, got)


def test_update_ignores_slug_and_is_system(pz: Personize) -> None:
    tid = by_slug(pz, "contact")["id"]
    pz.ok("PATCH", f"/entities/{tid}", {"slug": "person", "isSystem": False, "icon": "user"})
    got = pz.get(f"/entities/{tid}")  # "slug and isSystem cannot be changed via API (silently ignored)"
    assert str(got.get("slug") or got.get("name")).lower() == "contact" and got["isSystem"] is True, got
    assert got["icon"] == "user"


def test_archive_custom_type_and_restore_with_status_active(pz: Personize) -> None:
    tid = custom_type(pz)
    pz.ok("DELETE", f"/entities/{tid}")  # client.entityTypes.archive(id)
    assert pz.get(f"/entities/{tid}")["status"] == "Archived"
    pz.ok("PATCH", f"/entities/{tid}", {"status": "Active"})  # "Restore it later"
    assert pz.get(f"/entities/{tid}")["status"] == "Active"


def test_archiving_a_system_type_is_403(pz: Personize) -> None:
    tid = by_slug(pz, "company")["id"]
    pz.fails("DELETE", f"/entities/{tid}", None, 403)  # "System types cannot be archived (returns 403)"
    assert pz.get(f"/entities/{tid}")["status"] == "Active"


def test_unknown_entity_type_id_is_404(pz: Personize) -> None:
    pz.fails("GET", "/entities/act_doesnotexist", None, (404, 422))  # 422 = issue 11's "unknown entity type"
