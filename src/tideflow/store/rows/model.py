"""Tables of the Model Center: models, versions, status history and aliases.

``registered_model.last_version`` is the per-model version counter: a new version runs
``UPDATE ... SET last_version = last_version + 1`` on the model's row, which both allocates the
number (never reused, even after deletes) and locks the model so that concurrent creators and
deployers of one model are serialised on every backend.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tideflow.domain.limits import MAX_TYPE_LENGTH, MAX_URI_LENGTH
from tideflow.domain.model import ModelVersion, RegisteredModel, StatusChange
from tideflow.domain.status import ModelStatus
from tideflow.store.rows.base import ID, NAME_LENGTH, STATUS_LENGTH, Base, RowData
from tideflow.store.types import JSONText, UTCDateTime


class RegisteredModelRow(Base):
    """A registered model of a project."""

    __tablename__ = "registered_model"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    project_id: Mapped[int] = mapped_column(ID, ForeignKey("project.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    description: Mapped[str] = mapped_column(Text)
    tags: Mapped[Any] = mapped_column(JSONText)
    last_version: Mapped[int] = mapped_column(Integer)
    create_time: Mapped[datetime] = mapped_column(UTCDateTime)
    update_time: Mapped[datetime] = mapped_column(UTCDateTime)

    @classmethod
    def to_domain(cls, row: RowData) -> RegisteredModel:
        """The :class:`RegisteredModel` of a result row of this table."""
        return RegisteredModel(
            name=row["name"],
            description=row["description"],
            tags=row["tags"] or {},
            last_version=row["last_version"],
            create_time=row["create_time"],
            update_time=row["update_time"],
        )


class ModelVersionRow(Base):
    """One version of a registered model."""

    __tablename__ = "model_version"
    __table_args__ = (
        UniqueConstraint("model_id", "version"),
        # (status, version) lets "the newest version in status X" read one index entry.
        Index(None, "model_id", "status", "version"),
    )

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    model_id: Mapped[int] = mapped_column(ID, ForeignKey("registered_model.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(STATUS_LENGTH))
    uri: Mapped[str] = mapped_column(String(MAX_URI_LENGTH))
    # The column kept the spelling of schema 0001; the domain field is ``flavour``.
    flavor: Mapped[str] = mapped_column(String(MAX_TYPE_LENGTH))
    metrics: Mapped[Any] = mapped_column(JSONText)
    params: Mapped[Any] = mapped_column(JSONText)
    tags: Mapped[Any] = mapped_column(JSONText)
    description: Mapped[str] = mapped_column(Text)
    job_execution_id: Mapped[int | None] = mapped_column(
        ID, ForeignKey("job_execution.id", ondelete="SET NULL"), index=True
    )
    create_time: Mapped[datetime] = mapped_column(UTCDateTime)
    update_time: Mapped[datetime] = mapped_column(UTCDateTime)

    @classmethod
    def to_domain(cls, row: RowData, model: str) -> ModelVersion:
        """The :class:`ModelVersion` of a result row of this table, for model ``model``."""
        return ModelVersion(
            model=model,
            version=row["version"],
            status=ModelStatus(row["status"]),
            uri=row["uri"],
            flavour=row["flavor"],
            metrics=row["metrics"] or {},
            params=row["params"] or {},
            tags=row["tags"] or {},
            description=row["description"],
            job_execution_id=row["job_execution_id"],
            create_time=row["create_time"],
            update_time=row["update_time"],
        )


class ModelStatusChangeRow(Base):
    """One status change of a model version (its history outlives event compaction)."""

    __tablename__ = "model_status_change"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    version_id: Mapped[int] = mapped_column(
        ID, ForeignKey("model_version.id", ondelete="CASCADE"), index=True
    )
    previous: Mapped[str | None] = mapped_column(String(STATUS_LENGTH))
    status: Mapped[str] = mapped_column(String(STATUS_LENGTH))
    time: Mapped[datetime] = mapped_column(UTCDateTime)

    @classmethod
    def to_domain(cls, row: RowData, model: str, version: int) -> StatusChange:
        """The :class:`StatusChange` of a result row of this table."""
        previous = row["previous"]
        return StatusChange(
            model=model,
            version=version,
            previous=None if previous is None else ModelStatus(previous),
            status=ModelStatus(row["status"]),
            time=row["time"],
        )


class ModelAliasRow(Base):
    """A named pointer (``champion``) to one version of a model; it changes no status."""

    __tablename__ = "model_alias"
    __table_args__ = (UniqueConstraint("model_id", "alias"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    model_id: Mapped[int] = mapped_column(ID, ForeignKey("registered_model.id", ondelete="CASCADE"))
    alias: Mapped[str] = mapped_column(String(NAME_LENGTH))
    version_id: Mapped[int] = mapped_column(
        ID, ForeignKey("model_version.id", ondelete="CASCADE"), index=True
    )
