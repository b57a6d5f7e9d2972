"""Exports load where they are meant to: Jaeger UI's Upload JSON, Zipkin v2, OTLP/JSON."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from analyzer.analysis import analyze
from analyzer.report.export import to_jaeger, to_otlp, to_zipkin
from tests.fixtures import CAPTURES
from tests.test_cli import run

SPECS = Path(__file__).parent / "data" / "specs"


@pytest.fixture(scope="module")
def result() -> Any:
    return analyze([CAPTURES / "productpage-http1.pcap"])


def test_jaeger_has_what_the_ui_needs(result: Any) -> None:
    doc = to_jaeger(result)
    sample = json.loads((SPECS / "jaeger-ui-otlp2jaeger-out.json").read_text())
    assert set(doc) == set(sample)
    sample_span = sample["data"][0]["spans"][0]
    assert doc["data"]
    logs = 0
    for trace in doc["data"]:
        assert set(trace) == set(sample["data"][0])
        assert len(trace["traceID"]) == 32
        ids = [s["spanID"] for s in trace["spans"]]
        assert len(ids) == len(set(ids))  # transform-trace-data.ts renames duplicates
        for s in trace["spans"]:
            assert set(s) == set(sample_span)
            assert s["traceID"] == trace["traceID"]
            assert s["processID"] in trace["processes"]
            assert trace["processes"][s["processID"]]["serviceName"]
            assert s["startTime"] > 0 and s["duration"] > 0  # µs; 0 would be repaired as epoch
            for ref in s["references"]:
                assert ref["refType"] == "CHILD_OF" and ref["spanID"] in ids  # no orphans
            assert all(set(t) == {"key", "type", "value"} for t in s["tags"])
            logs += len(s["logs"])
            for log in s["logs"]:
                assert {f["key"] for f in log["fields"]} >= {"event", "kind", "headers"}
    assert logs == len(result.findings)


def _zipkin_validator() -> jsonschema.Draft4Validator:
    spec = yaml.safe_load((SPECS / "zipkin2-api.yaml").read_text())
    schema = {"$ref": "#/definitions/ListOfSpans", "definitions": spec["definitions"]}
    return jsonschema.Draft4Validator(schema)


def test_zipkin_validates_against_the_api(result: Any) -> None:
    spans = to_zipkin(result)
    assert spans
    _zipkin_validator().validate(spans)
    kinds = {s["kind"] for s in spans}
    assert kinds == {"SERVER", "CLIENT"}
    assert sum(len(s["annotations"]) for s in spans) == len(result.findings)
    broken = [s for s in spans if s["annotations"]]
    assert all(s["tags"]["error"] == "true" for s in broken)


def test_zipkin_validator_rejects_a_bad_span() -> None:
    with pytest.raises(jsonschema.ValidationError):
        _zipkin_validator().validate([{"traceId": "XYZ", "id": "1"}])


def _otlp_ids_to_proto_json(doc: dict[str, Any]) -> dict[str, Any]:
    """OTLP/JSON encodes ids as hex; protobuf's JSON mapping wants base64 bytes."""
    for rs in doc["resourceSpans"]:
        for ss in rs["scopeSpans"]:
            for s in ss["spans"]:
                for k in ("traceId", "spanId", "parentSpanId"):
                    if k in s:
                        s[k] = base64.b64encode(bytes.fromhex(s[k])).decode()
    return doc


def test_otlp_parses_with_opentelemetry_proto(result: Any) -> None:
    doc = to_otlp(result)
    msg = ExportTraceServiceRequest()
    json_format.Parse(json.dumps(_otlp_ids_to_proto_json(doc)), msg)  # rejects unknown fields
    spans = [s for rs in msg.resource_spans for ss in rs.scope_spans for s in ss.spans]
    assert spans
    assert all(len(s.trace_id) == 16 and len(s.span_id) == 8 for s in spans)
    assert sum(len(s.events) for s in spans) == len(result.findings)
    services = {a.value.string_value for rs in msg.resource_spans for a in rs.resource.attributes}
    assert services == {"productpage"}


@pytest.mark.parametrize("target", ["jaeger", "zipkin", "otlp"])
def test_export_command_writes_file_without_secrets(target: str, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.fixtures import ROOT

    monkeypatch.chdir(ROOT)
    out = tmp_path / f"x.{target}.json"
    code, _, err = run("export", "--to", target, "-o", str(out), "captures/productpage-http1.pcap")
    assert code == 0, err
    text = out.read_text()
    json.loads(text)
    assert "Bearer" not in text and "session=" not in text
