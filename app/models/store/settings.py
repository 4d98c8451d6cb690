"""The Store's settings (one JSON value per key) and prompt presets."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Row

from app.engine.types import Sampling
from app.models.records import PresetRecord
from app.models.store.database import Database
from app.models.tables import Preset, Setting

_PRESET_COLUMNS = (Preset.id, Preset.name, Preset.system_prompt, Preset.sampling, Preset.builtin)


def _preset(row: Row[Any]) -> PresetRecord:
    sampling = Sampling.from_dict(row[3]) if row[3] is not None else None
    return PresetRecord(row[0], row[1], row[2], sampling, bool(row[4]))


class SettingsStore(Database):
    """Store mixin: settings and presets."""

    def get_setting(self, key: str, default: Any = None) -> Any:
        with self._reading() as conn:
            row = conn.execute(select(Setting.value).where(Setting.key == key)).first()
        return row[0] if row else default

    def set_setting(self, key: str, value: Any) -> None:
        """Store any JSON-serialisable value; TypeError (and nothing written) otherwise."""
        json.dumps(value)  # fail with a plain TypeError, not a wrapped SQLAlchemy error
        statement = sqlite_insert(Setting).values(key=key, value=value)
        statement = statement.on_conflict_do_update(
            index_elements=[Setting.key], set_={"value": statement.excluded.value}
        )
        with self._writing() as session:
            session.execute(statement)

    def list_presets(self) -> list[PresetRecord]:
        query = select(*_PRESET_COLUMNS).order_by(Preset.builtin.desc(), Preset.name)
        with self._reading() as conn:
            return [_preset(row) for row in conn.execute(query)]

    def upsert_preset(
        self,
        name: str,
        system_prompt: str,
        sampling: Sampling | None = None,
        builtin: bool = False,
    ) -> PresetRecord:
        values = {
            "system_prompt": system_prompt,
            "sampling": sampling.to_dict() if sampling is not None else None,
            "builtin": builtin,
        }
        statement = (
            sqlite_insert(Preset)
            .values(name=name, **values)
            .on_conflict_do_update(index_elements=[Preset.name], set_=values)
            .returning(*_PRESET_COLUMNS)
        )
        with self._writing() as session:
            return _preset(session.execute(statement).one())

    def save_user_presets(
        self, presets: list[tuple[str, str, Sampling | None]]
    ) -> list[PresetRecord]:
        """Save (name, system prompt, sampling) as user presets in one transaction, replacing
        user presets of the same names. ValueError, and nothing saved, when a name is a
        built-in preset's: those are read-only."""
        names = [name for name, _prompt, _sampling in presets]
        saved = []
        with self._writing() as session:
            taken = session.execute(
                select(Preset.name).where(Preset.name.in_(names), Preset.builtin.is_(True))
            ).scalars().first()
            if taken is not None:
                raise ValueError(f"{taken!r} is a built-in preset's name")
            for name, system_prompt, sampling in presets:
                values = {
                    "system_prompt": system_prompt,
                    "sampling": sampling.to_dict() if sampling is not None else None,
                    "builtin": False,
                }
                statement = (
                    sqlite_insert(Preset)
                    .values(name=name, **values)
                    .on_conflict_do_update(index_elements=[Preset.name], set_=values)
                    .returning(*_PRESET_COLUMNS)
                )
                saved.append(_preset(session.execute(statement).one()))
        return saved

    def rename_preset(self, name: str, new_name: str) -> PresetRecord:
        """Rename a user preset. ValueError for a built-in one or a name already in use,
        KeyError when there is no preset ``name``."""
        with self._writing() as session:
            builtin = session.execute(
                select(Preset.builtin).where(Preset.name == name)
            ).scalar_one_or_none()
            if builtin is None:
                raise KeyError(name)
            if builtin:
                raise ValueError(f"preset {name!r} is built in and cannot be renamed")
            if new_name != name and session.execute(
                select(Preset.id).where(Preset.name == new_name)
            ).first():
                raise ValueError(f"a preset named {new_name!r} already exists")
            row = session.execute(
                update(Preset).where(Preset.name == name).values(name=new_name)
                .returning(*_PRESET_COLUMNS)
            ).one()
            return _preset(row)

    def delete_preset(self, name: str) -> bool:
        """Delete a user preset; ValueError for a built-in one, False if there is none."""
        with self._writing() as session:
            builtin = session.execute(
                select(Preset.builtin).where(Preset.name == name)
            ).scalar_one_or_none()
            if builtin is None:
                return False
            if builtin:
                raise ValueError(f"preset {name!r} is built in and cannot be deleted")
            session.execute(delete(Preset).where(Preset.name == name))
            return True
