"""Exports load where they are meant to: Jaeger UI's Upload JSON, Zipkin v2, OTLP/JSON;
whole or one file per trace (--split); a span whose parent is elsewhere is marked."""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import math
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from analyzer.analysis import Result, Trace, analyze
from analyzer.report.export import (
    document,
    documents,
    dumps,
    host_port,
    orphans,
    to_jaeger,
    to_otlp,
    to_zipkin,
    write,
)
from analyzer.report.redact import marker
from tests.fixtures import CAPTURES, ROOT
from tests.test_cli import run

SPECS = Path(__file__).parent / "data" / "specs"
PODS = [str(CAPTURES / "pods" / "productpage.pcap"), str(CAPTURES / "pods" / "reviews.pcap")]
HEX32 = re.compile(r"[0-9a-f]{32}")
HEX16 = re.compile(r"[0-9a-f]{16}")


@pytest.fixture(scope="module")
def result() -> Result:
    return analyze([CAPTURES / "productpage-http1.pcap"])


@pytest.fixture(scope="module")
def pods() -> Result:
    """Two pods whose joined traces include spans whose parent is in another trace (the
    caller changed the trace id, or dropped the header the trace is keyed by)."""
    return analyze(PODS)


# -- Jaeger UI ------------------------------------------------------------------------------


def _jaeger_ui_upload(text: str) -> list[dict[str, Any]]:
    """What Jaeger UI does with a file given to "Upload JSON" (tests/data/specs and
    /work/shared/specs/jaeger-ui: readJsonFile.ts, then transform-trace-data.ts per trace),
    rewritten step by step: the parsed traces, or an AssertionError where the UI would
    reject the file, fall back to a default or drop information."""
    obj = json.loads(text)  # readJsonFile: one JSON document (else JSON lines)
    assert isinstance(obj, dict) and "resourceSpans" not in obj  # else sent to the OTLP path
    assert isinstance(obj["data"], list)
    loaded = []
    for data in obj["data"]:
        trace_id = data["traceID"]
        assert trace_id  # transformTraceData returns null without one
        span_map: dict[str, dict[str, Any]] = {}
        for span in data["spans"]:
            # a span id seen twice would be renamed "<id>_1": ids must be unique
            assert span["spanID"] not in span_map
            # processes[processID] || {serviceName: 'unknown-service'}: it must resolve
            process = data["processes"][span["processID"]]
            assert process["serviceName"]
            assert all(set(t) >= {"key", "value"} for t in process.get("tags") or [])
            tags = span.get("tags") or []
            pairs = [(t["key"], t["value"]) for t in tags]
            assert len(pairs) == len(set(pairs))  # deduplicateTags would warn
            for log in span.get("logs") or []:
                assert log["fields"] and math.isfinite(log["timestamp"])
            # a startTime missing, NaN or <= 0 is "repaired" to the parent's
            assert isinstance(span["startTime"], int) and span["startTime"] > 0
            assert isinstance(span["duration"], int) and span["duration"] > 0
            span_map[span["spanID"]] = {**span, "process": process, "children": []}
        roots, orphaned = [], []
        for span in span_map.values():
            refs = span.get("references") or []
            parent = next((span_map[r["spanID"]] for r in refs
                           if r["refType"] in ("CHILD_OF", "FOLLOWS_FROM") and r["spanID"] in span_map),
                          None)
            if refs and parent is None:
                orphaned.append(span)
            if parent is not None:
                parent["children"].append(span)
            else:
                roots.append(span)
        seen = 0
        stack = list(roots)
        while stack:  # the depth-first walk: every span must be reachable from a root
            s = stack.pop()
            seen += 1
            stack.extend(s["children"])
        assert seen == len(span_map)
        loaded.append({"traceID": trace_id, "roots": roots, "orphans": orphaned, "spans": span_map})
    return loaded


def test_jaeger_has_what_the_ui_needs(result: Result) -> None:
    doc = to_jaeger(result)
    sample = json.loads((SPECS / "jaeger-ui-otlp2jaeger-out.json").read_text())
    assert set(doc) == set(sample)
    sample_span = sample["data"][0]["spans"][0]
    assert doc["data"]
    logs = 0
    for trace in doc["data"]:
        assert set(trace) == set(sample["data"][0])
        assert HEX32.fullmatch(trace["traceID"])
        for s in trace["spans"]:
            assert set(s) == set(sample_span)
            assert s["traceID"] == trace["traceID"]
            assert all(set(t) == {"key", "type", "value"} for t in s["tags"])
            logs += len(s["logs"])
            for log in s["logs"]:
                assert {f["key"] for f in log["fields"]} >= {"event", "kind", "headers"}
    assert logs == len(result.findings)


def test_jaeger_upload_loads_every_trace_whole(result: Result) -> None:
    loaded = _jaeger_ui_upload(json.dumps(to_jaeger(result)))
    assert len(loaded) == len(result.traces)
    assert all(not t["orphans"] for t in loaded)  # one capture: nothing outside it
    assert sum(len(t["spans"]) for t in loaded) == sum(len(t.spans) for t in result.traces)


def test_jaeger_processes_say_where_a_span_was_seen(pods: Result) -> None:
    doc = to_jaeger(pods)
    by_capture = {p.capture: p for p in pods.pods}
    for trace in doc["data"]:
        for s in trace["spans"]:
            process = trace["processes"][s["processID"]]
            tags = {t["key"]: t["value"] for t in process["tags"]}
            pod = by_capture[tags["tracewire.capture"]]
            assert process["serviceName"] == pod.service
            assert tags["ip"] == pod.address
            assert tags.get("k8s.pod.name") == pod.pod_name
            span_tags = {t["key"]: t["value"] for t in s["tags"]}
            assert span_tags["tracewire.capture"] == tags["tracewire.capture"]


def test_a_parent_outside_the_trace_is_marked_not_silent(pods: Result) -> None:
    doc = to_jaeger(pods)
    loaded = _jaeger_ui_upload(json.dumps(doc))
    found = orphans(pods)
    assert found  # the fixture has them: else this test shows nothing
    home = {sid: t["traceID"] for t in loaded for sid in t["spans"]}
    orphaned = {s["spanID"] for t in loaded for s in t["orphans"]}
    assert orphaned == {o.span_id for o in found}  # exactly the spans the UI shows as fragments
    for t in loaded:
        for s in t["spans"].values():
            tags = {x["key"]: x["value"] for x in s["tags"]}
            if s["spanID"] in orphaned:
                parent = s["references"][0]["spanID"]
                assert tags["tracewire.parent_outside"] == "true"
                assert tags["tracewire.parent_trace"] == home[parent] != t["traceID"]
                assert s["references"][0]["traceID"] == home[parent]
                assert s["warnings"] == [f"tracewire: parent span {parent} is in trace {home[parent]}"]
            else:
                assert "tracewire.parent_outside" not in tags and s["warnings"] is None
    # the other formats carry the same mark
    zipkin = {s["id"]: s["tags"] for s in to_zipkin(pods)}
    otlp = {s["spanId"]: {a["key"]: a["value"] for a in s["attributes"]}
            for rs in to_otlp(pods)["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]}
    for o in found:
        assert zipkin[o.span_id]["tracewire.parent_trace"] == o.parent_trace
        assert otlp[o.span_id]["tracewire.parent_trace"] == {"stringValue": o.parent_trace}
    assert sum("tracewire.parent_outside" in t for t in zipkin.values()) == len(found)


def test_a_parent_in_no_exported_trace_is_said_so(pods: Result) -> None:
    """Exporting a trace alone (as --trace does), its fragment's parent is in no trace of
    the export: said so, never a trace id the export does not hold."""
    (first, *_) = orphans(pods)
    (alone,) = [t for t in pods.traces if any(s.span_id == first.span_id for s in t.spans)]
    part = dataclasses.replace(pods, traces=[alone])
    (o,) = [x for x in orphans(part) if x.span_id == first.span_id]
    assert o.parent_trace is None and o.detail() == f"its parent span {o.parent_id} is in no exported trace"
    (trace,) = to_jaeger(part)["data"]
    (span,) = [s for s in trace["spans"] if s["spanID"] == first.span_id]
    assert span["warnings"] == [f"tracewire: parent span {o.parent_id} is in no exported trace"]
    tags = {t["key"]: t["value"] for t in span["tags"]}
    assert tags["tracewire.parent_outside"] == "true" and "tracewire.parent_trace" not in tags
    assert span["references"] == [{"refType": "CHILD_OF", "traceID": trace["traceID"],
                                   "spanID": o.parent_id}]


def test_the_cli_warns_once_about_fragments(pods: Result, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    rel = [str(Path(p).relative_to(ROOT)) for p in PODS]
    code, out, err = run("export", "--to", "jaeger", *rel)
    assert code == 0
    json.loads(out)
    found = orphans(analyze(rel))
    first = found[0]
    n = len({o.trace_id for o in found})
    assert err == (f"tracewire: warning: {n} of {len(pods.traces)} traces have a span whose parent "
                   f"span is outside it (tagged tracewire.parent_outside): first {first.service} at "
                   f"{first.capture} frame {first.frame}, its parent span {first.parent_id} is in "
                   f"trace {first.parent_trace}\n")
    code, _, err = run("export", "--to", "jaeger", "captures/productpage-http1.pcap")
    assert code == 0 and err == ""


# -- Zipkin ---------------------------------------------------------------------------------


def _zipkin_validator() -> jsonschema.Draft4Validator:
    spec = yaml.safe_load((SPECS / "zipkin2-api.yaml").read_text())
    schema = {"$ref": "#/definitions/ListOfSpans", "definitions": spec["definitions"]}
    return jsonschema.Draft4Validator(schema)


def test_zipkin_validates_against_the_api(result: Result) -> None:
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


# -- OTLP -----------------------------------------------------------------------------------


def _otlp_ids_to_proto_json(doc: dict[str, Any]) -> dict[str, Any]:
    """OTLP/JSON encodes ids as hex; protobuf's JSON mapping wants base64 bytes."""
    for rs in doc["resourceSpans"]:
        for ss in rs["scopeSpans"]:
            for s in ss["spans"]:
                for k in ("traceId", "spanId", "parentSpanId"):
                    if k in s:
                        assert (HEX32 if k == "traceId" else HEX16).fullmatch(s[k])
                        s[k] = base64.b64encode(bytes.fromhex(s[k])).decode()
    return doc


def _otlp_message(doc: dict[str, Any]) -> ExportTraceServiceRequest:
    msg = ExportTraceServiceRequest()
    json_format.Parse(json.dumps(_otlp_ids_to_proto_json(doc)), msg)  # rejects unknown fields
    return msg


def test_otlp_parses_with_opentelemetry_proto(result: Result) -> None:
    msg = _otlp_message(to_otlp(result))
    spans = [s for rs in msg.resource_spans for ss in rs.scope_spans for s in ss.spans]
    assert spans
    assert all(len(s.trace_id) == 16 and len(s.span_id) == 8 for s in spans)
    assert sum(len(s.events) for s in spans) == len(result.findings)
    (pod,) = result.pods
    for rs in msg.resource_spans:
        res = {a.key: a.value.string_value for a in rs.resource.attributes}
        assert res == {"service.name": pod.service, "tracewire.capture": pod.capture,
                       "k8s.pod.ip": pod.address}


def test_otlp_speaks_current_semantic_conventions(result: Result) -> None:
    msg = _otlp_message(to_otlp(result))
    spans = [s for rs in msg.resource_spans for ss in rs.scope_spans for s in ss.spans]
    by_id = {c.frame: c for c in result.calls}
    seen_status = seen_full = 0
    for s in spans:
        attrs = {a.key: a.value for a in s.attributes}
        assert not {"http.method", "http.status_code", "http.url", "http.target", "http.flavor",
                    "net.peer.ip", "net.peer.port", "span.kind"} & set(attrs)  # the old names
        call = by_id[attrs["tracewire.frame"].int_value]
        assert attrs["http.request.method"].string_value == call.method
        assert attrs["url.path"].string_value == (call.path or "").split("?")[0]
        assert attrs["network.protocol.name"].string_value == "http"
        assert attrs["network.protocol.version"].string_value == "1.1"
        if call.status is not None:  # an integer, as OTLP types it
            assert attrs["http.response.status_code"].WhichOneof("value") == "int_value"
            assert attrs["http.response.status_code"].int_value == call.status
            seen_status += 1
        if s.kind == s.SPAN_KIND_CLIENT and call.authority:
            host, _, port = call.authority.partition(":")
            assert attrs["server.address"].string_value == host
            assert attrs["server.port"].int_value == int(port)
            assert attrs["url.full"].string_value == f"http://{call.authority}{call.path}"
            seen_full += 1
        if s.kind == s.SPAN_KIND_SERVER:
            assert attrs["server.port"].int_value == call.dport
            assert attrs["network.peer.address"].string_value == call.src
        if call.request_id:
            values = attrs["http.request.header.x-request-id"].array_value.values
            assert [v.string_value for v in values] == [call.request_id]
    assert seen_status and seen_full


def test_otlp_status_code_is_written_as_otlp_json_int64(result: Result) -> None:
    doc = to_otlp(result)
    values = [a["value"] for rs in doc["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]
              for a in s["attributes"] if a["key"] == "http.response.status_code"]
    assert values and all(set(v) == {"intValue"} and v["intValue"].isdigit() for v in values)


@pytest.mark.parametrize(("path", "authority", "nat", "expected"), [
    ("/a/b?token=x&q=1", "reviews:9080", None,
     {"url.path": "/a/b", "url.query": f"token={marker(1)}&q=1", "url.scheme": "http",
      "url.full": f"http://reviews:9080/a/b?token={marker(1)}&q=1", "server.address": "reviews",
      "server.port": "9080"}),
    ("https://api.example/v1?x=1", "api.example", None,  # absolute-form, to a proxy
     {"url.path": "/v1", "url.query": "x=1", "url.scheme": "https",
      "url.full": "https://api.example/v1?x=1", "server.address": "api.example"}),
    ("*", "[fd00::1]:8080", None,  # OPTIONS *: no URL to make up
     {"url.path": "*", "url.scheme": "http", "server.address": "fd00::1", "server.port": "8080"}),
    ("/x", None, "10.96.0.7:9080",  # no authority: the ClusterIP the replies came from
     {"url.path": "/x", "url.scheme": "http", "server.address": "10.96.0.7", "server.port": "9080"}),
    ("/x", None, None, {"url.path": "/x", "url.scheme": "http"}),  # nothing names the server
])
def test_otlp_url_and_server_say_only_what_the_request_shows(
        result: Result, path: str, authority: str | None, nat: str | None,
        expected: dict[str, str]) -> None:
    (client,) = [s for t in result.traces for s in t.spans if s.kind == "client"][:1]
    call = dataclasses.replace(client.call, path=path, authority=authority, nat_reply_from=nat)
    span = dataclasses.replace(client, call=call, parent_id=None, findings=[])
    doc = to_otlp(dataclasses.replace(result, traces=[Trace("ab" * 16, [span])]))
    (out,) = [s for rs in doc["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]]
    attrs = {a["key"]: next(iter(a["value"].values())) for a in out["attributes"]}
    keys = ("url.path", "url.query", "url.scheme", "url.full", "server.address", "server.port")
    assert {k: attrs[k] for k in keys if k in attrs} == expected
    _otlp_message(doc)


@pytest.mark.parametrize(("authority", "expected"), [
    ("reviews:9080", ("reviews", 9080)),
    ("reviews", ("reviews", None)),
    ("[fd00::1]:8080", ("fd00::1", 8080)),
    ("[fd00::1]", ("fd00::1", None)),
    ("fd00::1", ("fd00::1", None)),  # not a valid authority: no port read out of it
    ("host:99999", ("host", None)),
    ("host:0", ("host", None)),
    ("host:８０", ("host", None)),  # fullwidth digits are not a port
    ("host:", ("host", None)),
])
def test_host_port_reads_only_what_is_there(authority: str, expected: tuple[str, int | None]) -> None:
    assert host_port(authority) == expected


# -- one file per trace ---------------------------------------------------------------------


def _trace_ids_of(target: str, doc: Any) -> set[str]:
    if target == "jaeger":
        return {t["traceID"] for t in doc["data"]}
    if target == "zipkin":
        return {s["traceId"] for s in doc}
    return {s["traceId"] for rs in doc["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]}


def _span_count(target: str, doc: Any) -> int:
    if target == "jaeger":
        return sum(len(t["spans"]) for t in doc["data"])
    if target == "zipkin":
        return len(doc)
    return sum(len(ss["spans"]) for rs in doc["resourceSpans"] for ss in rs["scopeSpans"])


@pytest.mark.parametrize("target", ["jaeger", "zipkin", "otlp"])
def test_split_writes_one_loadable_file_per_trace(target: str, pods: Result, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    out = tmp_path / "new" / "traces"  # created, parents too
    code, stdout, _ = run("export", "--to", target, "--split", str(out),
                          *[str(Path(p).relative_to(ROOT)) for p in PODS])
    assert code == 0 and stdout == ""
    files = sorted(out.iterdir())
    assert len(files) == len(pods.traces) > 1
    whole = {"jaeger": to_jaeger, "zipkin": to_zipkin, "otlp": to_otlp}[target](pods)
    spans = 0
    for f in files:
        tid, suffix = f.name.split(".", 1)
        assert HEX32.fullmatch(tid) and suffix == f"{target}.json"
        doc = json.loads(f.read_text())
        assert _trace_ids_of(target, doc) == {tid}  # one trace per file
        spans += _span_count(target, doc)
        if target == "jaeger":
            (loaded,) = _jaeger_ui_upload(f.read_text())
            assert loaded["traceID"] == tid
        elif target == "zipkin":
            _zipkin_validator().validate(doc)
        else:
            _otlp_message(doc)
    assert spans == _span_count(target, whole)
    assert {f.name.split(".")[0] for f in files} == _trace_ids_of(target, whole)


def test_split_documents_match_the_whole_export(pods: Result) -> None:
    """Each trace's document is the whole export's part for that trace, span for span."""
    whole = {t["traceID"]: t for t in to_jaeger(pods)["data"]}
    parts = dict(documents(pods, "jaeger"))
    assert list(parts) == list(whole)
    assert all(parts[tid]["data"] == [whole[tid]] for tid in whole)
    zipkin = to_zipkin(pods)
    for tid, spans in documents(pods, "zipkin"):
        assert spans == [s for s in zipkin if s["traceId"] == tid]


@pytest.mark.parametrize("target", ["jaeger", "zipkin", "otlp"])
def test_written_trace_by_trace_is_the_whole_document(target: str, result: Result, pods: Result) -> None:
    """``write`` streams the export; its bytes are those of the document dumped whole, with
    several traces and resources, with one, and with none."""
    single = dataclasses.replace(pods, traces=pods.traces[:1])
    empty = dataclasses.replace(pods, traces=[])
    for r in (result, pods, single, empty):
        out = io.StringIO()
        write(r, target, out)
        assert out.getvalue() == dumps(document(r, target)) + "\n"
        json.loads(out.getvalue())


def test_a_service_named_like_the_stream_marker_is_only_a_name(result: Result) -> None:
    """The marker ``write`` splices arrays into is a JSON string; capture content names
    services, so a name that looks like a marker must stay a name."""
    hostile = "tracewire-spans-0-" + "0" * 32
    renamed = dataclasses.replace(result, traces=[
        dataclasses.replace(t, spans=[dataclasses.replace(s, service=hostile) for s in t.spans])
        for t in result.traces])
    for target in ("jaeger", "zipkin", "otlp"):
        out = io.StringIO()
        write(renamed, target, out)
        assert out.getvalue() == dumps(document(renamed, target)) + "\n"
        assert hostile in out.getvalue()


def test_split_and_output_together_is_one_line_of_trouble(tmp_path: Path) -> None:
    code, out, err = run("export", "--to", "zipkin", "-o", str(tmp_path / "x.json"),
                         "--split", str(tmp_path / "d"), str(CAPTURES / "productpage-http1.pcap"))
    assert (code, out, err) == (2, "", "tracewire: give -o FILE or --split DIR, not both\n")
    assert not (tmp_path / "d").exists() and not (tmp_path / "x.json").exists()


def test_split_into_a_file_is_one_line_of_trouble(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("")
    code, _, err = run("export", "--to", "zipkin", "--split", str(tmp_path / "f" / "d"),
                       str(CAPTURES / "productpage-http1.pcap"))
    assert code == 2 and err.startswith("tracewire: ") and err.endswith(": cannot write: Not a directory\n")
    assert err.count("\n") == 1


@pytest.mark.parametrize("target", ["jaeger", "zipkin", "otlp"])
def test_export_command_writes_file_without_secrets(target: str, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    out = tmp_path / f"x.{target}.json"
    code, _, err = run("export", "--to", target, "-o", str(out), "captures/productpage-http1.pcap")
    assert code == 0, err
    code, _, err = run("export", "--to", target, "--split", str(tmp_path / "split"),
                       "captures/productpage-http1.pcap")
    assert code == 0, err
    for f in [out, *(tmp_path / "split").iterdir()]:
        text = f.read_text()
        json.loads(text)
        assert "Bearer" not in text and "session=" not in text
