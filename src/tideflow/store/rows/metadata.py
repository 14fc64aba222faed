"""Tables of the Metadata Service: projects, datasets, artifacts and metrics."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Double,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from tideflow.domain.limits import MAX_TYPE_LENGTH, MAX_URI_LENGTH
from tideflow.domain.metadata import Artifact, Dataset, Metric, Project
from tideflow.store.rows.base import ID, NAME_LENGTH, Base, RowData
from tideflow.store.types import JSONText, UTCDateTime


class ProjectRow(Base):
    """A project: the scope of everything else and the namespace of its events."""

    __tablename__ = "project"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH), unique=True)
    description: Mapped[str] = mapped_column(Text)
    create_time: Mapped[datetime] = mapped_column(UTCDateTime)

    @classmethod
    def to_domain(cls, row: RowData) -> Project:
        """The :class:`Project` of a result row of this table."""
        return Project(
            name=row["name"], description=row["description"], create_time=row["create_time"]
        )


class DatasetRow(Base):
    """A dataset; ``version`` counts its updates."""

    __tablename__ = "dataset"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    project_id: Mapped[int] = mapped_column(ID, ForeignKey("project.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    uri: Mapped[str] = mapped_column(String(MAX_URI_LENGTH))
    format: Mapped[str] = mapped_column(String(MAX_TYPE_LENGTH))
    stream: Mapped[bool] = mapped_column(Boolean)
    schema: Mapped[Any] = mapped_column(JSONText)
    properties: Mapped[Any] = mapped_column(JSONText)
    description: Mapped[str] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer)
    create_time: Mapped[datetime] = mapped_column(UTCDateTime)
    update_time: Mapped[datetime] = mapped_column(UTCDateTime)

    @classmethod
    def to_domain(cls, row: RowData) -> Dataset:
        """The :class:`Dataset` of a result row of this table."""
        return Dataset(
            name=row["name"],
            uri=row["uri"],
            format=row["format"],
            stream=bool(row["stream"]),
            schema=row["schema"] or {},
            properties=row["properties"] or {},
            description=row["description"],
            version=row["version"],
            create_time=row["create_time"],
            update_time=row["update_time"],
        )


class ArtifactRow(Base):
    """An artifact."""

    __tablename__ = "artifact"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    project_id: Mapped[int] = mapped_column(ID, ForeignKey("project.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    uri: Mapped[str] = mapped_column(String(MAX_URI_LENGTH))
    kind: Mapped[str] = mapped_column(String(MAX_TYPE_LENGTH))
    properties: Mapped[Any] = mapped_column(JSONText)
    description: Mapped[str] = mapped_column(Text)
    create_time: Mapped[datetime] = mapped_column(UTCDateTime)
    update_time: Mapped[datetime] = mapped_column(UTCDateTime)

    @classmethod
    def to_domain(cls, row: RowData) -> Artifact:
        """The :class:`Artifact` of a result row of this table."""
        return Artifact(
            name=row["name"],
            uri=row["uri"],
            kind=row["kind"],
            properties=row["properties"] or {},
            description=row["description"],
            create_time=row["create_time"],
            update_time=row["update_time"],
        )


class MetricRow(Base):
    """One metric value with what it describes (job execution, model version, dataset)."""

    __tablename__ = "metric"
    __table_args__ = (Index(None, "project_id", "name"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    project_id: Mapped[int] = mapped_column(ID, ForeignKey("project.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(MAX_TYPE_LENGTH))
    value: Mapped[float] = mapped_column(Double)
    step: Mapped[int | None] = mapped_column(BigInteger)
    time: Mapped[datetime] = mapped_column(UTCDateTime)
    tags: Mapped[Any] = mapped_column(JSONText)
    job_execution_id: Mapped[int | None] = mapped_column(
        ID, ForeignKey("job_execution.id", ondelete="CASCADE"), index=True
    )
    model_version_id: Mapped[int | None] = mapped_column(
        ID, ForeignKey("model_version.id", ondelete="CASCADE"), index=True
    )
    dataset_id: Mapped[int | None] = mapped_column(
        ID, ForeignKey("dataset.id", ondelete="CASCADE"), index=True
    )

    @classmethod
    def to_domain(cls, row: RowData) -> Metric:
        """The :class:`Metric` of a result row joined with model and dataset names.

        The row must also carry ``model``, ``version`` and ``dataset`` (``None`` when unset).
        """
        return Metric(
            metric_id=row["id"],
            name=row["name"],
            value=row["value"],
            step=row["step"],
            time=row["time"],
            tags=row["tags"] or {},
            job_execution_id=row["job_execution_id"],
            model=row["model"],
            version=row["version"],
            dataset=row["dataset"],
        )
