"""``client.datasets`` / ``artifacts`` / ``metrics`` / ``lineage``, bound to the client's project."""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from tideflow.domain.lineage import LineageRecord, LineageRef
from tideflow.domain.metadata import Artifact, Dataset, Metric
from tideflow.domain.page import Page
from tideflow.metadata import ArtifactService, DatasetService, LineageService, MetricService


class Datasets:
    """Datasets of one project."""

    def __init__(self, service: DatasetService, project: str) -> None:
        self._service = service
        self._project = project

    def register(
        self,
        name: str,
        *,
        uri: str = "",
        format: str = "",
        stream: bool = False,
        schema: Mapping[str, Any] | None = None,
        properties: Mapping[str, Any] | None = None,
        description: str = "",
    ) -> Dataset:
        """Register dataset ``name`` at version 1 (event DATASET_UPDATED)."""
        return self._service.create_dataset(
            self._project,
            name,
            uri=uri,
            format=format,
            stream=stream,
            schema=schema,
            properties=properties,
            description=description,
        )

    def get(self, name: str) -> Dataset:
        """Dataset ``name``."""
        return self._service.get_dataset(self._project, name)

    def list(self, *, limit: int = 100, cursor: str | None = None) -> Page[Dataset]:
        """The project's datasets, one page at a time."""
        return self._service.list_datasets(self._project, limit=limit, cursor=cursor)

    def update(
        self,
        name: str,
        *,
        uri: str | None = None,
        format: str | None = None,
        stream: bool | None = None,
        schema: Mapping[str, Any] | None = None,
        properties: Mapping[str, Any] | None = None,
        description: str | None = None,
    ) -> Dataset:
        """Change fields of a dataset and bump its version (event DATASET_UPDATED)."""
        return self._service.update_dataset(
            self._project,
            name,
            uri=uri,
            format=format,
            stream=stream,
            schema=schema,
            properties=properties,
            description=description,
        )

    def delete(self, name: str) -> None:
        """Delete dataset ``name``."""
        self._service.delete_dataset(self._project, name)


class Artifacts:
    """Artifacts of one project."""

    def __init__(self, service: ArtifactService, project: str) -> None:
        self._service = service
        self._project = project

    def register(
        self,
        name: str,
        *,
        uri: str = "",
        kind: str = "",
        properties: Mapping[str, Any] | None = None,
        description: str = "",
    ) -> Artifact:
        """Register artifact ``name``."""
        return self._service.create_artifact(
            self._project, name, uri=uri, kind=kind, properties=properties, description=description
        )

    def get(self, name: str) -> Artifact:
        """Artifact ``name``."""
        return self._service.get_artifact(self._project, name)

    def list(self, *, limit: int = 100, cursor: str | None = None) -> Page[Artifact]:
        """The project's artifacts, one page at a time."""
        return self._service.list_artifacts(self._project, limit=limit, cursor=cursor)

    def update(
        self,
        name: str,
        *,
        uri: str | None = None,
        kind: str | None = None,
        properties: Mapping[str, Any] | None = None,
        description: str | None = None,
    ) -> Artifact:
        """Change fields of an artifact."""
        return self._service.update_artifact(
            self._project, name, uri=uri, kind=kind, properties=properties, description=description
        )

    def delete(self, name: str) -> None:
        """Delete artifact ``name``."""
        self._service.delete_artifact(self._project, name)


class Metrics:
    """Metric values of one project."""

    def __init__(self, service: MetricService, project: str) -> None:
        self._service = service
        self._project = project

    def log(
        self,
        name: str,
        value: float,
        *,
        step: int | None = None,
        time: datetime | None = None,
        tags: Mapping[str, str] | None = None,
        model: str | None = None,
        version: int | None = None,
        job_execution_id: int | None = None,
        dataset: str | None = None,
    ) -> Metric:
        """Store one metric value, attached to a job execution, model version and/or dataset."""
        return self._service.log_metric(
            self._project,
            name,
            value,
            step=step,
            time=time,
            tags=tags,
            job_execution_id=job_execution_id,
            model=model,
            version=version,
            dataset=dataset,
        )

    def list(
        self,
        *,
        name: str | None = None,
        model: str | None = None,
        version: int | None = None,
        job_execution_id: int | None = None,
        dataset: str | None = None,
        limit: int = 1000,
    ) -> builtins.list[Metric]:
        """Metrics matching every filter given, in the order they were logged."""
        return self._service.list_metrics(
            self._project,
            name=name,
            job_execution_id=job_execution_id,
            model=model,
            version=version,
            dataset=dataset,
            limit=limit,
        )


class Lineage:
    """Lineage of the project's job executions."""

    def __init__(self, service: LineageService, project: str) -> None:
        self._service = service
        self._project = project

    def record(
        self,
        job_execution_id: int,
        *,
        inputs: Sequence[LineageRef | str] = (),
        outputs: Sequence[LineageRef | str] = (),
    ) -> LineageRecord:
        """Record a job execution's inputs and outputs in one atomic call (strings = datasets)."""
        return self._service.record_lineage(
            self._project, job_execution_id, inputs=inputs, outputs=outputs
        )

    def upstream(self, *, model: str, version: int) -> builtins.list[LineageRecord]:
        """What produced a model version, and from which data."""
        return self._service.upstream(self._project, model=model, version=version)

    def downstream(
        self, *, dataset: str, version: int | None = None
    ) -> builtins.list[LineageRecord]:
        """What read a dataset (one version, or any)."""
        return self._service.downstream(self._project, dataset=dataset, version=version)
