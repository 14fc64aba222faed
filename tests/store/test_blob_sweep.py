"""Upload files a killed server left in the blob store are swept, and only stale ones."""

from __future__ import annotations

import os
import time
from pathlib import Path

from tideflow.store.blob import STALE_UPLOAD_SECONDS, BlobStore
from tideflow.testing import TideflowTestServer


def leftover(directory: Path, name: str, age: float) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f".upload.{name}.tmp"
    path.write_bytes(b"half an upload")
    then = time.time() - age
    os.utime(path, (then, then))
    return path


def test_only_uploads_untouched_for_the_threshold_are_removed(tmp_path: Path) -> None:
    blobs = BlobStore(str(tmp_path))
    uri = blobs.put("packages", b"a stored blob")
    stale = leftover(tmp_path / "packages", "old", STALE_UPLOAD_SECONDS + 60)
    live = leftover(tmp_path / "models", "in-flight", 5)  # another server's upload, maybe
    other = tmp_path / "packages" / "notes.tmp"  # not an upload file: never touched
    other.write_text("x")
    assert blobs.sweep_uploads() == 1
    assert not stale.exists()
    assert live.exists()
    assert other.exists()
    assert blobs.get("packages", uri.rsplit("/", 1)[-1]) == b"a stored blob"
    assert blobs.sweep_uploads(older_than=0) == 1  # the in-flight one, once it is stale too
    assert not live.exists()


def test_a_server_start_sweeps_what_a_killed_server_left(tmp_path: Path) -> None:
    home = tmp_path / "home"
    stale = leftover(home / "blobs" / "packages", "killed", STALE_UPLOAD_SECONDS + 60)
    fresh = leftover(home / "blobs" / "packages", "recent", 1)
    with TideflowTestServer(home=home):
        assert not stale.exists()
        assert fresh.exists()
