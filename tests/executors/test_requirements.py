"""Requirements environments: built once per requirements hash, reused, installer errors reported.

No network: the installer runs with ``--no-index`` and installs a wheel shipped in the code
package (built here by hand) or finds the requirement already installed beside the server.
"""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path
from typing import Any

import tideflow as tide
from tideflow.domain.status import JobStatus

WHEEL = "tinypkg-0.1-py3-none-any.whl"


def build_wheel(directory: Path) -> None:
    """A minimal pure-Python wheel of ``tinypkg`` 0.1 (``tinypkg.VALUE == "tiny"``)."""
    files = {
        "tinypkg.py": b'VALUE = "tiny"\n',
        "tinypkg-0.1.dist-info/METADATA": b"Metadata-Version: 2.1\nName: tinypkg\nVersion: 0.1\n",
        "tinypkg-0.1.dist-info/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = []
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append("tinypkg-0.1.dist-info/RECORD,,")
    files["tinypkg-0.1.dist-info/RECORD"] = ("\n".join(record) + "\n").encode()
    with zipfile.ZipFile(directory / WHEEL, "w") as wheel:
        for name, data in files.items():
            wheel.writestr(name, data)


def test_an_environment_is_built_once_per_requirements_and_reused(
    make_rig: Any, steps: Any, tmp_path: Path
) -> None:
    rig = make_rig(installer_args=["--no-index"])
    build_wheel(rig.code)
    (rig.code / "requirements.txt").write_text(f"./{WHEEL}\ncloudpickle\n")
    outputs = [tmp_path / "first.txt", tmp_path / "second.txt"]
    starts = []
    for index, out in enumerate(outputs):
        with tide.workflow("wf") as wf, tide.job(f"job{index}"):
            tide.read_dataset("raw", processor=steps.Import("tinypkg", str(out)))
        starts.append(rig.start_job(wf, f"job{index}"))

    jobs = [rig.wait_status(s, JobStatus.FINISHED, JobStatus.FAILED, timeout=120) for s in starts]

    assert [j.status for j in jobs] == [JobStatus.FINISHED] * 2, [rig.log(s) for s in starts]
    assert [out.read_text() for out in outputs] == ["tinypkg tiny"] * 2
    assert rig.executor.environments.builds == 1
    (env,) = [p for p in (rig.home / "envs").iterdir() if p.is_dir()]
    assert (env / ".ready").exists()


def test_a_bad_requirement_fails_the_job_with_the_installers_error(
    make_rig: Any, steps: Any, tmp_path: Path
) -> None:
    rig = make_rig(installer_args=["--no-index"])
    (rig.code / "requirements.txt").write_text("tideflow-no-such-package-xyz==1.0\n")
    with tide.workflow("wf") as wf, tide.job("needs"):
        tide.read_dataset("raw", processor=steps.Import("json", str(tmp_path / "out")))
    start = rig.start_job(wf, "needs")

    job = rig.wait_status(start, JobStatus.FINISHED, JobStatus.FAILED, timeout=120)

    assert job.status is JobStatus.FAILED
    assert job.error.startswith("installing requirements.txt failed: ERROR:")
    assert "tideflow-no-such-package-xyz" in job.error
    assert "tideflow-no-such-package-xyz" in Path(job.log_uri).read_text()
    assert not [p for p in (rig.home / "envs").iterdir() if p.is_dir()]  # nothing half-built
