"""The ``tracewire`` command: a thin click group over the library.

Library errors become one line on stderr and exit status 2 here, and nowhere else.

Every stage is imported by the command that uses it, not here: ``--version``, ``--help``
and a usage error load click alone, and ``info`` and ``messages`` never load the analysis
(each module loaded is start-up time on every run, and the h2c benchmark is such runs).
``analyzer.__main__`` is the entry point: it installs the Ctrl-C guard, then imports this.
"""

from __future__ import annotations

import contextlib
import csv
import enum
import errno
import functools
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

import click

from analyzer import __version__
from analyzer.__main__ import caused_by_ctrl_c
from analyzer.errors import AnalyzerError

if TYPE_CHECKING:
    from analyzer.analysis import Options, Result
    from analyzer.pipeline import CaptureSummary
    from analyzer.records import Message
    from analyzer.report.redact import Policy
    from analyzer.report.select import TraceQuery

F = TypeVar("F", bound=Callable[..., Any])


def _printable(s: str) -> str:
    """``pipeline.printable``: text from the command line with its controls escaped. Used on
    usage errors, which should not wait for the reading stages to load before saying so."""
    from analyzer.pipeline import printable

    return printable(s)


class Exit(enum.IntEnum):
    """Exit statuses in the diff(1) convention."""

    OK = 0
    FOUND = 1
    TROUBLE = 2


def exit_status(one: str) -> str:
    """The exit statuses, as every command's --help ends (diff(1)'s convention); ``one``
    says when this command exits 1."""
    return (f"Exit status: 0 fine; 1 {one}; 2 trouble (a capture that cannot be read, a bad "
            "option, output that cannot be written); 130 interrupted (Ctrl-C). A closed pipe "
            "(| head) ends quietly with status 0.")


class Usage(click.UsageError):
    """A bad command line: one line saying what is wrong, and where help is."""

    def __init__(self, err: click.UsageError) -> None:
        super().__init__(" ".join(err.format_message().split()), err.ctx)

    def show(self, file: Any = None) -> None:
        where = "tracewire"  # as main() names it, whatever argv[0] was
        if self.ctx is not None and self.ctx.parent is not None:
            where += " " + " ".join(self.ctx.command_path.split()[1:])
        click.echo(f"tracewire: {_printable(self.format_message())}\nTry '{where} --help'.", err=True)


class Trouble(click.ClickException):
    """A fatal problem with the input: one line on stderr, exit status 2."""

    exit_code = Exit.TROUBLE

    def show(self, file: Any = None) -> None:
        click.echo(f"tracewire: {self.format_message()}", err=True)


def format_option(choices: list[str], help: str) -> Callable[[F], F]:
    """The one --format option every command has; the first choice is the default."""
    return click.option("--format", "fmt", type=click.Choice(choices), default=choices[0],
                        show_default=True, help=help)


def _pod_names(ctx: click.Context, param: click.Parameter,
               values: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """`--name POD=CAPTURE` -> (POD, CAPTURE); a pod name has no `=`, a path may."""
    out = []
    for v in values:
        pod, sep, capture = v.partition("=")
        if not sep or not pod or not capture or not pod.isprintable():
            raise click.BadParameter(f"{v!r} is not POD=CAPTURE", ctx, param)
        out.append((pod, capture))
    return tuple(out)


def _address(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """An IP address, written as the reports write addresses (so that it compares)."""
    if value is None:
        return None
    import ipaddress

    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        raise click.BadParameter(f"'{_printable(value)}' is not an IP address", ctx, param) from None


def _trace_query(ctx: click.Context, param: click.Parameter, value: str | None) -> TraceQuery | None:
    if value is None:  # click calls this for every command run, given --trace or not
        return None
    from analyzer.report.select import TraceQuery

    try:
        return TraceQuery.parse(value)
    except ValueError as err:
        raise click.BadParameter(f"'{_printable(value)}': {err}", ctx, param) from None


TRACE_HELP = ("Only this trace, across every capture given: the trace id Jaeger shows (32 or 16 "
              "hex digits), an x-request-id, or a B3 or W3C traceparent value.")


def trace_option(help: str = TRACE_HELP) -> Callable[[F], F]:
    """--trace ID, given to the command as ``trace`` (a TraceQuery, or None)."""
    return click.option("--trace", "trace", metavar="ID", callback=_trace_query, help=help)


def _unseen(r: Result, opts: Options) -> list[str]:
    """The --pod-ip and --app-port values the captures never show: a typo, or the wrong
    pod's capture. Said on stderr; the analysis goes on with what was given."""
    out: list[str] = []
    if opts.pod_ip is not None:
        seen = {a for c in r.calls for a in (c.src, c.dst)}
        seen |= {peer.rsplit(":", 1)[0] if peer.count(":") == 1 else peer
                 for p in r.pods for peer in p.encrypted_peers}
        if opts.pod_ip not in seen:
            out.append(f"--pod-ip {opts.pod_ip}: no HTTP message in the capture has this address")
    if opts.app_ports:  # (the calls are read back from disk: only when asked)
        ports = {p for c in r.calls for p in (c.sport, c.dport)}
        out += [f"--app-port {p}: no HTTP message in the capture has this port"
                for p in opts.app_ports if p not in ports]
    return out


def pod_options(f: F) -> F:
    """--pod-ip, --app-port, --outbound-port and --name, given to the command as ``opts``."""

    @functools.wraps(f)
    def wrapper(*args: Any, pod_ip: str | None, app_ports: tuple[int, ...],
                outbound_port: int, names: tuple[tuple[str, str], ...], **kwargs: Any) -> Any:
        from analyzer.analysis import Options
        from analyzer.analysis.naming import check_names

        given = [c for k in ("captures", "before", "after") for c in kwargs.get(k, ())]
        try:
            check_names(given, names)
        except AnalyzerError as err:
            raise Trouble(str(err)) from err
        return f(*args, opts=Options(pod_ip, app_ports, outbound_port, names=names), **kwargs)

    for option in reversed((
        click.option("--pod-ip", callback=_address,
                     help="The pod's IP address, when it cannot be read off the traffic."),
        click.option("--app-port", "app_ports", type=click.IntRange(1, 65535), multiple=True,
                     help="A port the application listens on (repeat for several); found from "
                     "the traffic otherwise."),
        click.option("--outbound-port", type=click.IntRange(1, 65535), default=15001, show_default=True,
                     help="The sidecar's outbound capture port that iptables redirects the app's "
                     "calls to."),
        click.option("--name", "names", multiple=True, metavar="POD=CAPTURE", callback=_pod_names,
                     help="Name the pod CAPTURE shows (repeat for several captures); otherwise "
                     "named from the file name (kubectl sniff -o POD.pcap), its XFCC identity or "
                     "the cluster-local Host its callers used."),
    )):
        wrapper = option(wrapper)
    return wrapper  # type: ignore[return-value]


def _counted(r: Result) -> str:
    def n(k: int, what: str) -> str:
        return f"{k} {what}" if k == 1 else f"{k} {what}s"

    return f"{n(len(r.traces), 'trace')}, {n(len(r.findings), 'finding')}"


def _seen(r: Result) -> str:
    """What the captures showed, for a run that found nothing to report."""
    def n(k: int, what: str) -> str:
        return f"{k} {what}" if k == 1 else f"{k} {what}s"

    return "; ".join(f"{_printable(cap)}: {n(msgs, 'HTTP message')} in {n(frames, 'frame')}"
                     for cap, (msgs, frames) in r.seen.items())


def _analysis(captures: Sequence[str], opts: Options, jobs: int | None = 1) -> Result:
    return _analyses([captures], opts, jobs)[0]


def _analyses(groups: Sequence[Sequence[str]], opts: Options, jobs: int | None) -> list[Result]:
    """One analysis per group of captures, every capture read by up to ``jobs`` processes
    (None: ``parallel.auto_jobs``)."""
    from analyzer.analysis.engine import analyze_groups
    from analyzer.analysis.parallel import auto_jobs
    from analyzer.report.redact import escape

    if jobs is None:
        jobs = auto_jobs([p for g in groups for p in g])
    try:
        results = analyze_groups(groups, opts, jobs=jobs)
    except AnalyzerError as err:
        raise Trouble(str(err)) from err
    for result in results:
        for warning in [*result.warnings, *_unseen(result, opts)]:  # a capture given twice, ...
            click.echo(f"tracewire: warning: {escape(warning)}", err=True)
    return results


def jobs_option(f: F) -> F:
    """--jobs N, given to the command as ``jobs`` (None: one process per core)."""
    return click.option(
        "--jobs", "-j", type=click.IntRange(min=1), default=None, metavar="N",
        help="Read up to N captures at once, each in a process of its own (default: the number "
        "of cores, for captures of 16 MiB or more in all; 1 reads them one after the other in "
        "this process). The output is the same.",
    )(f)


def redaction_options(f: F) -> F:
    """--show-secrets and --redact NAME, given to the command as one ``policy``."""

    @functools.wraps(f)
    def wrapper(*args: Any, show_secrets: bool, redact: tuple[str, ...], **kwargs: Any) -> Any:
        from analyzer.report.redact import Policy

        return f(*args, policy=Policy.of(show_secrets, redact), **kwargs)

    wrapper = click.option(
        "--redact", "redact", multiple=True, metavar="NAME",
        help="Also redact the values of this header (repeat for several); credentials "
        "(authorization, cookies, API keys, tokens, baggage...) and credential query "
        "parameters are redacted already.",
    )(wrapper)
    wrapper = click.option(
        "--show-secrets",
        is_flag=True,
        help="Show credentials (authorization, cookie, API keys...) instead of redacting them.",
    )(wrapper)
    return wrapper  # type: ignore[return-value]


def layout_options(limit: bool = False) -> Callable[[F], F]:
    """--color (and --limit N for analyze): how a text report is written for its reader. They
    reach the report through the context (``_layout``), leaving the command's own arguments
    alone."""

    def decorate(f: F) -> F:
        @functools.wraps(f)
        def wrapper(*args: Any, color: str, **kwargs: Any) -> Any:
            ctx = click.get_current_context()
            ctx.meta["tracewire.color"] = color
            if limit:
                ctx.meta["tracewire.limit"] = kwargs.pop("limit")
            return f(*args, **kwargs)

        wrapper = click.option(
            "--color", "--colour", "color", type=click.Choice(["auto", "always", "never"]), default="auto",
            show_default=True, help="Colour the table for a terminal: auto colours when standard output "
            "is one and NO_COLOR is not set.")(wrapper)
        if limit:
            wrapper = click.option(
                "--limit", type=click.IntRange(min=0), default=10, show_default=True, metavar="N",
                help="Findings shown in detail after the grouped verdict in the table (--all shows "
                "every one).")(wrapper)
        return wrapper  # type: ignore[return-value]

    return decorate


def _layout() -> dict[str, Any]:
    """The width, colour and detail limit a text report is laid out with."""
    from analyzer.report.term import Paint, colour_wanted, width

    meta = click.get_current_context().meta
    out: dict[str, Any] = {"width": width(),
                           "paint": Paint(colour_wanted(meta.get("tracewire.color", "auto")))}
    if "tracewire.limit" in meta:
        out["limit"] = meta["tracewire.limit"]
    return out


# Output errors: the disk is full, the file too big, the quota spent, the device failing, or
# standard output closed. A closed pipe (EPIPE) is not among them: the reader left, that is fine.
OUTPUT_ERRNOS = frozenset((errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EIO, errno.EBADF,
                           errno.EROFS))


def _stdout_to_devnull() -> None:
    """Python's advice for a closed pipe: point stdout at /dev/null, so that the flush at
    exit finds nowhere to fail and prints no "Exception ignored" noise."""
    with contextlib.suppress(OSError, ValueError):  # no descriptor (CliRunner): nothing to do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _flush_stdout() -> OSError | None:
    """Write out whatever was decoded so far; on failure say why (and silence stdout)."""
    if sys.stdout is None:  # started with stdout closed; invoke() has said so
        return None
    try:
        sys.stdout.flush()
    except OSError as err:
        _stdout_to_devnull()
        return err
    return None


def _where(err: BaseException) -> str:
    """The capture and frame being processed, when the pipeline was reading one, and the
    innermost line of tracewire's code the error came from."""
    from analyzer.pipeline import internal_error

    parallel = sys.modules.get("analyzer.analysis.parallel")  # loaded if workers ran
    if parallel is not None and isinstance(err, parallel.WorkerError):
        return str(err.where)  # a worker's (--jobs) error: where it was, said there
    return internal_error(err)


@contextlib.contextmanager
def _progress() -> Iterator[None]:
    """A progress line on stderr while the command runs, for a person at a terminal (not a
    pipe, not CI); the first write to stdout or stderr ends it (``analyzer.progress``)."""
    from analyzer import progress

    if not progress.wanted():
        yield
        return
    line = progress.Progress(sys.stderr).start()
    out, err = sys.stdout, sys.stderr
    if out.isatty():  # the same screen: the report must not land in the line (a file may)
        sys.stdout = progress.StopOnWrite(out, line)
    sys.stderr = progress.StopOnWrite(err, line)
    try:
        yield
    finally:
        line.stop()
        sys.stdout, sys.stderr = out, err


class Guarded(click.Group):
    """The group that keeps every promise about how tracewire ends: output decoded before a
    failure is written out first, then one line on stderr; exit 2 for trouble, 130 for
    Ctrl-C, 0 when the reader of a pipe left early. --debug (or TRACEWIRE_DEBUG=1) shows
    the traceback of an unexpected error instead of its one line."""

    def make_context(self, info_name: str | None, args: list[str],
                     parent: click.Context | None = None, **extra: Any) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as err:
            raise err if isinstance(err, Usage) else Usage(err) from None
        except KeyboardInterrupt:  # while parsing, --help or --version: click would say "Aborted!", 1
            click.echo("tracewire: interrupted", err=True)
            raise click.exceptions.Exit(130) from None

    def invoke(self, ctx: click.Context) -> Any:
        pipeline = sys.modules.get("analyzer.pipeline")  # a pass of an earlier run in this process
        if pipeline is not None:
            pipeline.POSITION.capture, pipeline.POSITION.reader = None, None
        if sys.stdout is None:  # `tracewire ... >&-`: Python has no stdout at all
            raise Trouble("cannot write the output: standard output is closed")
        try:
            with _progress():
                rv = super().invoke(ctx)
            failed = _flush_stdout()  # a full disk shows here, not in the interpreter's exit
            if failed is not None:
                raise failed
            return rv
        except click.UsageError as err:
            raise err if isinstance(err, Usage) else Usage(err) from None
        except (click.ClickException, click.exceptions.Exit, click.Abort, SystemExit):
            _flush_stdout()
            raise
        except KeyboardInterrupt:
            _flush_stdout()
            click.echo("tracewire: interrupted", err=True)
            raise click.exceptions.Exit(130) from None
        except BrokenPipeError:
            _stdout_to_devnull()
            raise click.exceptions.Exit(Exit.OK) from None
        except Exception as err:
            failed = _flush_stdout()
            if caused_by_ctrl_c(err):
                click.echo("tracewire: interrupted", err=True)
                raise click.exceptions.Exit(130) from None
            if isinstance(err, OSError) and err.errno in OUTPUT_ERRNOS:
                raise Trouble(f"cannot write the output: {err.strerror or err}") from err
            if failed is not None and failed.errno in OUTPUT_ERRNOS:
                raise Trouble(f"cannot write the output: {failed.strerror or failed}") from err
            if ctx.meta.get("tracewire.debug"):  # --debug, or TRACEWIRE_DEBUG as click reads it
                traceback.print_exception(err, file=sys.stderr)
                raise click.exceptions.Exit(Exit.TROUBLE) from None
            raise Trouble(f"{_where(err)}; a bug: --debug shows the traceback") from err


def _show_version(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    """--version, as click.version_option writes it; the build is found (which loads the
    HTTP/2 stage, for its Huffman kernel) only when asked."""
    if not value or ctx.resilient_parsing:
        return
    from analyzer._build import build_info

    click.echo(f"tracewire, version {__version__} ({build_info()})", color=ctx.color)
    ctx.exit()


@click.group(cls=Guarded, epilog=exit_status(
    "when analyze --fail-on-broken finds a break, diff finds a difference or check finds the "
    "verdict differs from its expectation"),
             context_settings={"help_option_names": ["-h", "--help"]})
# the build (compiled or pure, Huffman kernel) matters when comparing timings or reporting a bug
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_show_version,
              help="Show the version and exit.")
@click.option("--debug", is_flag=True, envvar="TRACEWIRE_DEBUG",
              help="Show the traceback of an unexpected error instead of one line "
              "(also TRACEWIRE_DEBUG=1).")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Find where tracing headers stop propagating, from packet captures of a service mesh.

    Reads pcap and pcapng files (also gzip-compressed, or - for stdin) such as those
    `kubectl sniff` writes, reassembles TCP, parses HTTP and reports x-request-id, B3,
    W3C and other tracing headers per message.
    """
    ctx.meta["tracewire.debug"] = debug


def _messages(captures: tuple[str, ...], summaries: list[CaptureSummary]) -> Iterator[Message]:
    from analyzer.pipeline import CaptureSummary, read_messages

    for path in captures:
        summary = CaptureSummary(path)
        summaries.append(summary)
        try:
            yield from read_messages(path, summary, keep_connections=False)
        except AnalyzerError as err:
            raise Trouble(str(err)) from err


@cli.command(epilog=exit_status("never (messages lists, it does not judge)"))
@click.argument("captures", nargs=-1, required=True, metavar="CAPTURE...")
@format_option(["table", "jsonl", "csv"],
               "table: one line per message for a terminal; jsonl: one JSON object per message; "
               "csv: one row per message.")
@trace_option(TRACE_HELP + " Shows the messages that carry it and the responses to them.")
@redaction_options
def messages(captures: tuple[str, ...], fmt: str, trace: TraceQuery | None, policy: Policy) -> None:
    """List every HTTP message with its tracing headers, in capture order.

    CAPTURE is a pcap or pcapng file, optionally gzip-compressed, or - for stdin.
    """
    from analyzer.report.messages import CSV_FIELDS, csv_row
    from analyzer.report.redact import escape, json_safe
    from analyzer.tracing.corroborate import Corroboration

    out: TextIO = sys.stdout  # CliRunner swaps it in tests
    summaries: list[CaptureSummary] = []
    # One pass: a guessed tracing value is shown when an earlier message (or this one)
    # carried it under a known name.
    seen = Corroboration()
    confirms = seen.confirms
    keep = None
    if trace is not None:
        from analyzer.report.select import MessageFilter  # loads the analysis records

        keep = MessageFilter(trace)
    shown: dict[str, int] = {}  # capture -> messages shown

    def selected() -> Iterator[Message]:
        for m in _messages(captures, summaries):
            seen.see(m.headers)  # every message corroborates, shown or not
            if keep is None or keep(m):
                shown[m.capture] = shown.get(m.capture, 0) + 1
                yield m

    if fmt == "jsonl":
        from analyzer.report.message_json import message_json  # jsonout.compact(message_dict)

        batch: list[str] = []
        try:
            for m in selected():
                batch.append(json_safe(message_json(m, policy, confirms)))
                if len(batch) >= 256:  # fewer, larger writes; still streaming
                    batch.append("")
                    out.write("\n".join(batch))
                    batch.clear()
        finally:
            # Everything decoded before a failure reaches the output, then the error line.
            if batch:
                batch.append("")
                out.write("\n".join(batch))
    elif fmt == "csv":
        w = csv.writer(out)
        w.writerow(CSV_FIELDS)
        for m in selected():
            w.writerow(csv_row(m, policy, confirms))
    else:
        # Rows are written as they come (widths fixed for the terminal), so a large capture streams.
        from analyzer.report.messages import message_table
        from analyzer.report.term import plural, width, wrap

        cols = width()
        layout = message_table(cols)
        current = None
        for m in selected():
            if m.capture != current:
                if current is not None:
                    out.write("\n")
                current = m.capture
                if len(captures) > 1:
                    out.write(f"== {escape(current)}\n")
                out.write(layout.head() + "\n")
            out.write("\n".join(layout.lines(m, policy, confirms)) + "\n")
        for s in summaries:
            line = f"{escape(s.capture)}: {s.messages} messages in {s.frames} frames"
            if trace is not None:
                line = (f"{escape(s.capture)}: {shown.get(s.capture, 0)} of {s.messages} messages "
                        f"in {s.frames} frames match --trace {escape(trace.text)}")
            if s.anomalies:
                line += f", {plural(len(s.anomalies), 'anomaly')} (see `tracewire info`)"
            out.write("\n".join(wrap(line, cols, "    ")) + "\n")


def _span(s: CaptureSummary) -> str:
    from analyzer.report.messages import rfc3339

    if s.first_ts is None or s.last_ts is None:
        return "-"
    secs = (s.last_ts - s.first_ts) / 1e9
    return f"{rfc3339(s.first_ts)} .. {rfc3339(s.last_ts)} ({secs:.3f} s)"


def info_dict(s: CaptureSummary) -> dict[str, Any]:
    from analyzer.decode import LINKTYPE_NAMES
    from analyzer.report.messages import anomaly_dict, rfc3339

    protocols: dict[str, int] = {}
    for c in s.connections:
        protocols[c.protocol] = protocols.get(c.protocol, 0) + 1
    return {
        "capture": s.capture,
        "format": s.format,
        "linktypes": [{"id": lt, "name": LINKTYPE_NAMES.get(lt, "unknown")} for lt in s.linktypes],
        "frames": s.frames,
        "first_ts": None if s.first_ts is None else rfc3339(s.first_ts),
        "last_ts": None if s.last_ts is None else rfc3339(s.last_ts),
        "tcp_segments": s.tcp_segments,
        "not_tcp": dict(sorted(s.not_tcp.items())),
        "messages": s.messages,
        "protocols": protocols,
        "connections": [
            {
                "id": c.id,
                "client": c.client,
                "server": c.server,
                "protocol": c.protocol,
                "first_frame": c.first_frame,
                "syn_seen": c.syn_seen,
                "segments": c.segments,
                "bytes": c.payload_bytes,
                "gap_bytes": c.gap_bytes,
                "messages": c.messages,
                "unknown_headers": c.unknown_headers,
            }
            for c in s.connections
        ],
        "anomalies": [anomaly_dict(a) for a in s.anomalies],
    }


@cli.command(epilog=exit_status("never (info describes, it does not judge)"))
@click.argument("captures", nargs=-1, required=True, metavar="CAPTURE...")
@format_option(["table", "json"],
               "table: readable summary; json: one JSON object (an array of them for several "
               "captures).")
def info(captures: tuple[str, ...], fmt: str) -> None:
    """Summarise captures: format, link types, frames, time span, TCP connections and the
    protocol each carries, and every anomaly found."""
    docs: list[dict[str, Any]] = []
    for n, capture in enumerate(captures):
        if n and fmt == "table":
            click.echo()
        docs.append(_info(capture, fmt))
    if fmt == "json":
        from analyzer.report import jsonout
        from analyzer.report.redact import json_safe

        doc = docs[0] if len(captures) == 1 else docs
        click.echo(json_safe(jsonout.indent2(doc)))


def _info(capture: str, fmt: str) -> dict[str, Any]:
    """One capture's summary; written out here for the table format."""
    from analyzer.pipeline import CaptureSummary, read_messages
    from analyzer.report.redact import escape
    from analyzer.report.term import Column, width, wrap
    from analyzer.report.term import table as grid

    s = CaptureSummary(capture)
    try:
        for _ in read_messages(capture, s):
            pass
    except AnalyzerError as err:
        raise Trouble(str(err)) from err
    d = info_dict(s)
    if fmt == "json":
        return d
    lts = ", ".join(f"{x['name']} ({x['id']})" for x in d["linktypes"]) or "-"
    not_tcp = ", ".join(f"{k} {v}" for k, v in d["not_tcp"].items()) or "none"
    protos = ", ".join(f"{k} {v}" for k, v in sorted(d["protocols"].items())) or "none"
    cols = width()
    click.echo("\n".join(wrap(escape(s.capture), cols, " " * 13, "capture      ")))
    for label, value in (("format", s.format), ("link types", lts),
                         ("frames", f"{s.frames} ({s.tcp_segments} TCP; not TCP: {not_tcp})"),
                         ("time span", _span(s)), ("connections", f"{len(s.connections)} ({protos})"),
                         ("messages", str(s.messages))):
        click.echo("\n".join(wrap(value, cols, " " * 13, f"{label:13}")))
    unknown = sum(c.unknown_headers for c in s.connections)
    if unknown:
        click.echo("\n".join(wrap(f"{unknown} header fields refer to HPACK entries older than the capture",
                                  cols, " " * 13, "unknown      ")))
    if s.connections:
        rows = [
            [
                c["id"],
                c["client"],
                c["server"],
                c["protocol"],
                c["first_frame"],
                "yes" if c["syn_seen"] else "no",
                c["segments"],
                c["bytes"],
                c["gap_bytes"] or "",
                c["messages"],
                c["unknown_headers"] or "",
            ]
            for c in d["connections"]
        ]
        click.echo()
        # laid out for the terminal: an endpoint (an IPv6 one, a NAT reply address) wraps, never cut
        columns = [Column("#", right=True), Column("client", wraps=True, sep=" "),
                   Column("server", wraps=True, sep=" "), Column("protocol"),
                   *(Column(t, right=True) for t in ("frame", "SYN", "segs", "bytes", "gap", "msgs",
                                                      "unknown"))]
        # gap and unknown only when some connection has one: room for the rest on a narrow screen
        keep = [i for i, c in enumerate(columns)
                if c.title not in ("gap", "unknown") or any(r[i] for r in rows)]
        head, body = grid([columns[i] for i in keep], [[escape(str(r[i])) for i in keep] for r in rows], cols)
        click.echo("\n".join(head + [x for lines in body for x in lines]))
    click.echo()
    click.echo(f"anomalies    {len(s.anomalies)}")
    for a in s.anomalies:
        where = f" [{a.flow}]" if a.flow else ""
        click.echo("\n".join(wrap(escape(f"frame {a.frame if a.frame is not None else '-'}: {a.kind}: "
                                         f"{a.detail}{where}"), cols, "    ", "  ")))
    return d


class _KindChoice(click.Choice[str]):
    """--kind's choices, the finding kinds (``analysis.model.KINDS``), read when first used
    (help, a value given), not when the module loads: reading them loads the analysis, which
    every other command can do without."""

    def __init__(self) -> None:
        super().__init__(())

    @property
    def choices(self) -> tuple[str, ...]:
        from analyzer.analysis.model import KINDS

        return KINDS

    @choices.setter
    def choices(self, value: object) -> None:
        pass  # click.Choice sets its choices in __init__; they are KINDS, always


@cli.command(epilog=exit_status("with --fail-on-broken when a finding is reported"))
@click.argument("captures", nargs=-1, required=True, metavar="CAPTURE...")
@format_option(["table", "json", "markdown", "jsonl", "csv", "html"],
               "table: for a terminal; json: everything, for tools; markdown: for a ticket or a PR; "
               "jsonl: one line per finding, then one per trace; csv: one row per finding; "
               "html: one offline page (service graph, each trace's sequence and waterfall).")
@click.option("--all", "show_all", is_flag=True, help="Show every trace, not only the broken ones.")
@trace_option()
@click.option("--service", "services", multiple=True, metavar="NAME",
              help="Only calls made by NAME or to NAME (a service, or a target such as reviews, "
              "reviews:9080 or its cluster name); repeat for several.")
@click.option("--kind", "kinds", multiple=True, type=_KindChoice(),
              help="Only findings of this kind; repeat for several.")
@click.option(
    "--fail-on-broken",
    is_flag=True,
    help="Exit with status 1 when any finding is reported (for CI pipelines that replay a capture).",
)
@layout_options(limit=True)
@jobs_option
@pod_options
@redaction_options
def analyze(
    captures: tuple[str, ...],
    fmt: str,
    show_all: bool,
    trace: TraceQuery | None,
    services: tuple[str, ...],
    kinds: tuple[str, ...],
    fail_on_broken: bool,
    jobs: int | None,
    opts: Options,
    policy: Policy,
) -> None:
    """Follow each traced request across hops and name where the trace breaks.

    Give one capture per pod (as `kubectl sniff -p` takes them); calls between pods are
    joined by their ids, never by clock.
    """
    from analyzer.report import analysis as report
    from analyzer.report.redact import escape
    from analyzer.report.select import Selection, select

    selection = Selection(trace, services, kinds)
    whole = _analysis(captures, opts, jobs)
    result = select(whole, selection)
    if not selection.empty and not (result.traces or result.findings or result.hops):
        # Said on stderr; a table or Markdown report of nothing would only mislead
        # ("no outbound calls found"), while the machine formats stay well-formed and empty.
        click.echo(f"tracewire: nothing matches {escape(selection.describe())} "
                   f"({_counted(whole)} in all)", err=True)
        if fmt in ("table", "markdown"):
            return
    if fmt == "jsonl":
        for line in report.jsonl_lines(result, policy):
            sys.stdout.write(line + "\n")
    elif fmt == "csv":
        w = csv.writer(sys.stdout)
        w.writerow(report.FINDING_CSV_FIELDS)
        w.writerows(report.finding_csv_rows(result, policy))
    elif fmt == "json":
        for piece in report.result_json(result, policy):  # never the whole document at once
            click.echo(piece, nl=False)
        click.echo("")
    elif fmt == "markdown":
        click.echo(report.markdown(result, show_all, policy), nl=False)
    elif fmt == "html":
        from analyzer.report.html import page

        click.echo(page(result, policy), nl=False)
    else:
        layout = _layout()  # click.echo keeps colour codes only when told to
        click.echo(report.table(result, show_all, policy, **layout), nl=False, color=layout["paint"].on)
    if fail_on_broken and result.findings:
        sys.exit(Exit.FOUND)


@cli.command(epilog=exit_status("never (export writes what it finds)"))
@click.argument("captures", nargs=-1, required=True, metavar="CAPTURE...")
@click.option(
    "--to",
    "target",
    type=click.Choice(["jaeger", "zipkin", "otlp"]),
    required=True,
    help="jaeger: JSON for the Jaeger UI's Upload JSON; zipkin: Zipkin v2 span list; "
    "otlp: OTLP/JSON ExportTraceServiceRequest.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True, allow_dash=True),
    default="-",
    show_default=True,
    help="File to write (- for standard output).",
)
@click.option(
    "--split",
    "split_dir",
    type=click.Path(file_okay=False),
    default=None,
    metavar="DIR",
    help="Write one file per trace into DIR (created if missing), named TRACEID.FORMAT.json: "
    "Zipkin Lens and Grafana show one trace per uploaded file.",
)
@trace_option()
@jobs_option
@pod_options
@redaction_options
def export(captures: tuple[str, ...], target: str, output: str, split_dir: str | None,
           trace: TraceQuery | None, jobs: int | None, opts: Options, policy: Policy) -> None:
    """Write the traces found as spans, to load in Jaeger or Zipkin; broken hops become
    span logs. Credentials never appear: only tracing ids and request lines (credential
    query parameters redacted) are exported.

    A span whose parent span is in another trace (its caller changed the trace id) is
    tagged tracewire.parent_outside and counted in a warning on stderr."""
    from analyzer.report import export as exporters
    from analyzer.report.redact import escape

    if split_dir is not None and output != "-":
        raise Trouble("give -o FILE or --split DIR, not both")
    from analyzer.report.select import Selection, select

    whole = _analysis(captures, opts, jobs)
    result = select(whole, Selection(trace))
    if not result.traces:  # an empty document loads as nothing: say why
        why = (f"nothing matches --trace {escape(trace.text)} ({_counted(whole)} in all)"
               if trace is not None else "no traces found: " + _seen(whole))
        click.echo(f"tracewire: warning: {why}", err=True)
    _warn_orphans(exporters.orphans(result), len(result.traces))
    if split_dir is not None:
        _write_split(split_dir, target, exporters.documents(result, target, policy))
        return
    if output == "-":
        # written trace by trace; its errors (closed pipe, full disk) are the group's to report
        exporters.write(result, target, sys.stdout, policy)
        return
    try:
        with open(output, "w", encoding="utf-8") as f:
            exporters.write(result, target, f, policy)
    except OSError as err:  # a missing folder, a full disk, no permission
        raise Trouble(f"{_printable(output)}: cannot write: {err.strerror or err}") from err


def _warn_orphans(orphans: Sequence[Any], traces: int) -> None:
    """UIs draw a trace with a span whose parent is elsewhere as a fragment: say so once."""
    if not orphans:
        return
    o = orphans[0]
    n = len({x.trace_id for x in orphans})
    click.echo(f"tracewire: warning: {n} of {traces} trace{'s' if traces != 1 else ''} "
               f"{'have' if n != 1 else 'has'} a span whose parent span is outside it (tagged "
               f"tracewire.parent_outside): first {_printable(o.service)} at "
               f"{_printable(o.capture)} frame {o.frame}, {o.detail()}", err=True)


def _write_split(folder: str, target: str, docs: Iterator[tuple[str, object]]) -> None:
    """One file per trace, TRACEID.TARGET.json: the trace id is 32 hex digits (the
    exporter sees to it), so capture content never chooses a path."""
    from analyzer.report import export as exporters

    try:
        os.makedirs(folder, exist_ok=True)
        for trace_id, doc in docs:
            path = os.path.join(folder, f"{trace_id}.{target}.json")
            with open(path, "w", encoding="utf-8") as f:
                f.write(exporters.dumps(doc) + "\n")
    except OSError as err:  # a file in the way, a full disk, no permission
        raise Trouble(f"{_printable(folder)}: cannot write: {err.strerror or err}") from err


@cli.command(epilog=exit_status(
    "when something differs (with --fail-on-regression: only when something got worse)"))
@click.argument("captures", nargs=-1, metavar="[BEFORE AFTER]")
@click.option("--before", "before", multiple=True, metavar="CAPTURE",
              help="A capture of the earlier state (repeat for several pods).")
@click.option("--after", "after", multiple=True, metavar="CAPTURE",
              help="A capture of the later state (repeat for several pods).")
@format_option(["table", "json", "markdown"],
               "table: for a terminal; json: for tools; markdown: fits a pull-request comment.")
@click.option("--all", "show_all", is_flag=True, help="Also list the unchanged hops.")
@click.option(
    "--fail-on-regression",
    is_flag=True,
    help="Exit 1 only when something got worse (a hop regressed or broke, or a new hop is "
    "broken), not for every difference: for a CI step against a known-good capture.",
)
@layout_options()
@jobs_option
@pod_options
@redaction_options
def diff(
    captures: tuple[str, ...],
    before: tuple[str, ...],
    after: tuple[str, ...],
    fmt: str,
    show_all: bool,
    fail_on_regression: bool,
    jobs: int | None,
    opts: Options,
    policy: Policy,
) -> None:
    """Compare two captures (before/after a fix, or two pods): which hops got fixed, which
    broke, which tracing headers appeared or disappeared.

    Exit status as diff(1): 0 nothing differs, 1 something differs, 2 trouble.
    """
    from analyzer.analysis.diff import diff as run_diff
    from analyzer.report import diff as report

    if captures:
        if before or after or len(captures) != 2:
            raise Trouble("give BEFORE AFTER, or --before CAPTURE... --after CAPTURE...")
        before, after = (captures[0],), (captures[1],)
    if not before or not after:
        raise Trouble("give BEFORE AFTER, or --before CAPTURE... --after CAPTURE...")
    result = run_diff(*_analyses([before, after], opts, jobs))  # both read at once
    if fmt == "json":
        from analyzer.report import jsonout
        from analyzer.report.redact import json_safe

        click.echo(json_safe(jsonout.indent2(report.diff_dict(result, policy))))
    elif fmt == "markdown":
        click.echo(report.markdown(result, show_all, policy), nl=False)
    else:
        layout = _layout()  # click.echo keeps colour codes only when told to
        click.echo(report.table(result, show_all, policy, **layout), nl=False, color=layout["paint"].on)
    if result.regressed if fail_on_regression else result.differs:
        sys.exit(Exit.FOUND)


@cli.command(name="check", epilog=exit_status(
    "when the verdict differs from the expectation (a missing or invalid expectation file is "
    "trouble: 2)"))
@click.argument("captures", nargs=-1, metavar="[CAPTURE...]")
@click.option("--expect", "expect", type=click.Path(dir_okay=False), metavar="FILE",
              help="The expectation file. Default: NAME.tracewire.json beside the one capture "
              "NAME.pcap, or DIR/<DIR's name>.tracewire.json for several captures in DIR (one "
              "scenario). Given alone, checks the captures the file lists.")
@click.option("--write-expect", is_flag=True,
              help="Write the expectation from the current verdict instead of checking it "
              "(notes in the file are kept).")
@format_option(["table", "json"], "table: what differs, for a terminal; json: for tools.")
@layout_options()
@pod_options
@redaction_options
def check_command(captures: tuple[str, ...], expect: str | None, write_expect: bool, fmt: str,
                  opts: Options, policy: Policy) -> None:
    """Check each hop's verdict against an expectation file, for propagation regression
    tests: a hop newly broken, fixed while expected broken, gone or new, or broken in
    another way (kinds, headers, counts) makes it exit 1.

    Hops are keyed as `tracewire diff` keys them (source, target, protocol, method, path
    template), so the file holds across re-recordings of the scenario.
    """
    from analyzer import check as expectations
    from analyzer.analysis import Options
    from analyzer.report import check as report

    if not captures and expect is None:
        raise Trouble("give CAPTURE..., or --expect FILE to check the captures it lists")
    try:
        path = expect if expect is not None else expectation_path(captures)
        if write_expect:
            # Rewriting keeps the file's captures (none given) and options (none given).
            previous = None
            if not captures:
                previous = expectations.load(path)
            elif opts == Options():
                with contextlib.suppress(expectations.ExpectationError):  # replaced whole anyway
                    previous = expectations.load(path)
            given = list(captures) if captures or previous is None else expectations.capture_paths(previous)
            options = expectations.options_for(previous) if previous and opts == Options() else opts
            written = expectations.write_expect(_analysis(given, options), path, options)
            click.echo(report.written(written), nl=False)
            return
        expected = expectations.load(path)
        if expect is None:
            _same_captures(path, captures, expectations.capture_paths(expected))
        given = list(captures) or expectations.capture_paths(expected)
        options = expectations.options_for(expected) if opts == Options() else opts
        result = expectations.check(_analysis(given, options), expected)
    except expectations.ExpectationError as err:
        raise Trouble(str(err)) from err
    if fmt == "json":
        from analyzer.report import jsonout
        from analyzer.report.redact import json_safe

        click.echo(json_safe(jsonout.indent2(report.check_dict(result, policy))))
    else:
        layout = _layout()  # click.echo keeps colour codes only when told to
        click.echo(report.table(result, policy, width=layout["width"], paint=layout["paint"]), nl=False,
                   color=layout["paint"].on)
    if not result.matches:
        sys.exit(Exit.FOUND)


def expectation_path(captures: Sequence[str]) -> str:
    from analyzer.check import expectation_path as path_of

    return path_of(captures)


def _same_captures(path: str, given: Sequence[str], listed: Sequence[str]) -> None:
    """A file found by name must be the one for these captures: a pod's own file is not its
    scenario's, and a scenario file used for other captures would compare other hops."""
    if not given or {os.path.realpath(c) for c in given} == {os.path.realpath(c) for c in listed}:
        return
    from analyzer.check import ExpectationError

    names = ", ".join(os.path.basename(c) for c in listed)
    raise ExpectationError(f"{_printable(path)}: captures: lists {_printable(names)}, not the captures given "
                           "(--expect FILE uses it for others)")


def main() -> None:
    """Run the command group (``analyzer.__main__.main`` runs it inside its Ctrl-C guard)."""
    try:
        cli.main(prog_name="tracewire")
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        # `tracewire messages x.pcap | head`: the reader left; that is not trouble.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)


if __name__ == "__main__":
    main()
