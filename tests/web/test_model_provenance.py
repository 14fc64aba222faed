"""The model page shows the selected version's signature, library versions and origin."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.web.api_support import PROJECT, World, start_world
from tideflow.domain.signature import infer_signature


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    w = start_world(tmp_path_factory.mktemp("web-provenance"))
    w.services.model_center.create_model(PROJECT, "adopted")
    w.services.model_center.create_version(
        PROJECT,
        "adopted",
        uri="file:///adopted",
        tags={
            "tideflow.signature": infer_signature(
                [{"x": 1.5, "segment": "a", "n": None}, {"x": 2, "segment": "b", "n": "z"}]
            ).to_json(),
            "tideflow.libraries": '{"python": "3.11.7", "scikit-learn": "1.9.1"}',
            "tideflow.origin": "imported",
            "tideflow.imported_from": "/models/adopted",
        },
    )
    yield w
    w.close()


def test_the_version_s_signature_and_provenance_are_shown(world: World) -> None:
    cookies = {"tideflow_token": world.tokens["reader"]}
    with httpx.Client(base_url=world.url, cookies=cookies, timeout=60) as ui:
        page = ui.get(f"/ui/{PROJECT}/models/adopted").text
        signature = page.split('id="signature"')[1].split("</table>")[0]
        assert '<td class="mono">x</td><td>double</td><td>yes</td>' in signature
        assert '<td class="mono">n</td><td>string</td><td>no</td>' in signature
        provenance = page.split('id="provenance">')[1].split("</p>")[0]
        assert "imported from" in provenance
        assert "/models/adopted" in provenance
        assert "python 3.11.7, scikit-learn 1.9.1" in provenance
        plain = ui.get(f"/ui/{PROJECT}/models/ctr").text  # no signature: says how to get one
        assert "log the model with <code>input_example=</code>" in plain
