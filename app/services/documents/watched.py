"""The folders the user added to each collection: indexed again now and then, so a file saved,
added or deleted there reaches the collection without the user doing anything (issue 13)."""

from __future__ import annotations

from app.models.store import Store

WATCHED_SETTING = "documents.watched"  # {collection id: [folder, …]}


def watched_folders(store: Store, collection_id: int) -> list[str]:
    value = store.get_setting(WATCHED_SETTING, {})
    folders = value.get(str(collection_id), []) if isinstance(value, dict) else []
    return [f for f in folders if isinstance(f, str)] if isinstance(folders, list) else []


def watch_folder(store: Store, collection_id: int, folder: str) -> None:
    value = store.get_setting(WATCHED_SETTING, {})
    value = value if isinstance(value, dict) else {}
    folders = watched_folders(store, collection_id)
    if folder not in folders:
        value[str(collection_id)] = [*folders, folder]
        store.set_setting(WATCHED_SETTING, value)


def forget_collection(store: Store, collection_id: int) -> None:
    value = store.get_setting(WATCHED_SETTING, {})
    if isinstance(value, dict) and value.pop(str(collection_id), None) is not None:
        store.set_setting(WATCHED_SETTING, value)
