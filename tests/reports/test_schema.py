"""results.json has a committed JSON Schema; the models and every file we write match it."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from maildrill.results import SCHEMA_PATH, json_schema


def _committed() -> dict[str, object]:
    return dict(json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))


def test_committed_schema_matches_the_models() -> None:
    __tracebackhide__ = True
    assert json_schema() == _committed(), (
        "maildrill/schema/results.schema.json is stale: run `python -m maildrill.results`"
    )


@pytest.mark.parametrize("fixture", ["results_file", "no_load_results_file"])
def test_written_results_validate_against_the_committed_schema(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    path: Path = request.getfixturevalue(fixture)
    schema = _committed()
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(json.loads(path.read_text(encoding="utf-8")), schema)


def test_schema_rejects_a_results_file_with_a_wrong_field(results_file: Path) -> None:
    data = json.loads(results_file.read_text(encoding="utf-8"))
    data["controls"][0]["verdict"] = "maybe"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, _committed())
