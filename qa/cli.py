"""Command line: thin wrappers over the library that turn errors into one-line messages."""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer

from qa.config import Settings
from qa.errors import QAError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Answer questions from a folder of documents, with citations.")

IndexOpt = Annotated[Path | None, typer.Option("--index", help="Index folder [env QA_INDEX_DIR].")]


def _print_version(value: bool) -> None:
    if value:
        from qa import __version__

        typer.echo(f"qa {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option(
        "--version", callback=_print_version, is_eager=True,
        help="Print the version and exit.")] = False) -> None:
    """Answer questions from a folder of documents, with citations."""
# Seconds open responses (say, a status event stream during a hung build) get to finish on
# SIGTERM before they are cut; then the server shuts down without waiting for the build.
SHUTDOWN_GRACE = 5


def _settings(**overrides: Any) -> Settings:
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


def _progress_bar() -> Any:
    from tqdm import tqdm

    bar: dict[str, Any] = {}

    def tick(phase: str, done: int, total: int) -> None:
        if phase == "read":
            if "read" not in bar:
                bar["read"] = tqdm(total=total, desc="reading", unit="file", disable=None,
                                   file=sys.stderr)
            b = bar["read"]
            b.update(done - b.n)
            if done >= total:
                b.close()
        elif phase == "embed" and "read" in bar:
            bar["read"].set_postfix(embedded=done)

    return tick


def _print_report(report: Any, settings: Settings, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2))
        return
    kind = "full build" if report.full else "incremental build"
    typer.echo(f"{kind} of {settings.corpus_dir} -> {settings.index_dir} "
               f"(version {report.version})")
    if report.full_reason and report.full and report.full_reason != "--full requested":
        typer.echo(f"  full because: {report.full_reason}")
    typer.echo(f"  files: {report.files}  documents: {report.documents}  chunks: {report.chunks}  "
               f"embedded: {report.embedded_chunks}")
    typer.echo(f"  added: {len(report.added)}  changed: {len(report.changed)}  "
               f"removed: {len(report.removed)}  unchanged: {len(report.unchanged)}  "
               f"skipped: {len(report.skipped)}")
    for s in report.skipped:
        typer.echo(f"  skipped {s.path}: {s.reason}")
    for w in report.warnings:
        typer.echo(f"  warning {w.path}: {w.reason}")
    typer.echo(f"  seconds: {report.seconds:.2f}")


@app.command()
def index(
    corpus_dir: Annotated[Path | None, typer.Argument(
        help="Corpus folder [env QA_CORPUS_DIR].")] = None,
    index_dir: IndexOpt = None,
    full: Annotated[bool, typer.Option("--full", help="Rebuild everything.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    watch: Annotated[bool, typer.Option(
        "--watch", help="After building, keep rebuilding when corpus files change.")] = False,
    ray: Annotated[str | None, typer.Option(
        "--ray", metavar="[ADDRESS]",
        help="Read, chunk and encode changed files on a Ray cluster: host:port, 'auto' "
        "(RAY_ADDRESS or the cluster on this machine; a bare --ray) or 'local' (start one "
        "here). Needs the 'ray' extra.")] = None,
) -> None:
    """Build or update the index of a corpus folder."""
    from contextlib import nullcontext

    from qa.index.build import build_index
    from qa.index.embed import load_embedder
    from qa.server.api import cached

    settings = _settings(corpus_dir=corpus_dir, index_dir=index_dir)
    factory = cached(lambda: load_embedder(settings))
    if ray is not None and watch:
        raise QAError("--watch rebuilds locally; run it without --ray")
    pipeline: Any = None
    if ray is not None:  # connects now: a bad address fails before anything is written
        from qa.index.distributed import RayPipeline

        pipeline = RayPipeline(settings, ray)
    with pipeline if pipeline is not None else nullcontext():
        report = build_index(settings, factory, full=full, progress=_progress_bar(),
                             pipeline=pipeline)
    _print_report(report, settings, as_json)
    if not watch:
        return
    import threading

    from qa.errors import QAError as BuildError
    from qa.index.watch import watch as watch_corpus

    def show(result: Any) -> None:
        if isinstance(result, BuildError):
            typer.echo(f"error: {result}", err=True)
        else:
            _print_report(result, settings, as_json)

    typer.echo(f"watching {settings.corpus_dir} for changes (Ctrl-C to stop)", err=True)
    watch_corpus(settings, factory, show, threading.Event())


def _format_answer(answer: Any) -> str:
    lines = [answer.text, ""]
    if answer.reason:
        lines.insert(1, answer.reason)
    if answer.answer_span is not None:
        lines[:0] = [f"{answer.answer_span.text} [{answer.answer_span.n}]", ""]
    if answer.query != answer.question:
        lines.insert(0, f"(searched: {answer.query})")
    for c in answer.citations:
        where = [c.path]
        if c.section:
            where.append(f"section {c.section}")
        if c.page is not None:
            where.append(f"page {c.page}")
        where.append(f"chars {c.start}-{c.end}")
        lines.append(f"[{c.n}] {c.title} - {', '.join(where)} (score {c.score:.3f})")
        snippet = c.text if len(c.text) <= 300 else c.text[:297] + "..."
        lines.append(f"    {snippet}")
    abstained = " (abstained)" if answer.abstained else ""
    lines.append(f"confidence {answer.confidence:.2f}{abstained}")
    return "\n".join(lines)


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question.")],
    index_dir: IndexOpt = None,
    k: Annotated[int | None, typer.Option(
        "--k", min=1, max=50, help="Passages to consider.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON object.")] = False,
) -> None:
    """Answer a question from the index, citing passages."""
    from qa.search.engine import Engine, check_question

    settings = _settings(index_dir=index_dir)
    check_question(question, settings.max_question_chars)  # fail fast, before loading anything
    answer = Engine(settings).ask(question, k=k)
    if as_json:
        typer.echo(json.dumps(asdict(answer), indent=2, ensure_ascii=False))
    else:
        typer.echo(_format_answer(answer))


@app.command()
def serve(
    corpus_dir: Annotated[Path | None, typer.Option(
        "--corpus", help="Corpus folder, indexed at start-up if there is no index "
                         "[env QA_CORPUS_DIR].")] = None,
    index_dir: IndexOpt = None,
    host: Annotated[str | None, typer.Option(
        "--host", help="Address to listen on [env QA_HOST].")] = None,
    port: Annotated[int | None, typer.Option("--port", min=0, max=65535,
                                             help="Port [env QA_PORT].")] = None,
) -> None:
    """Serve the chat page, the JSON API and OpenAI-compatible endpoints."""
    import uvicorn

    from qa.index.embed import load_embedder
    from qa.server.api import cached, create_app, load_engine

    logging.getLogger("qa").setLevel(logging.INFO)
    settings = _settings(corpus_dir=corpus_dir, index_dir=index_dir, host=host, port=port)
    factory = cached(lambda: load_embedder(settings))
    load_engine(settings, factory).close()  # build if missing; errors end here, as one line
    typer.echo(f"serving {settings.index_dir} on http://{settings.host}:{settings.port}", err=True)
    # The app reads X-Forwarded-For itself, from QA_TRUSTED_PROXIES only; uvicorn would trust
    # it from any loopback peer.
    uvicorn.run(create_app(settings, factory), host=settings.host, port=settings.port,
                log_level="info", access_log=False, proxy_headers=False,
                timeout_graceful_shutdown=SHUTDOWN_GRACE)


@app.command("eval")
def eval_(
    dataset_dir: Annotated[Path, typer.Argument(help="A BEIR folder, or a SQuAD-style folder "
                                                "with articles.jsonl.")],
    split: Annotated[str, typer.Option("--split", help="qrels split (BEIR folders).")] = "test",
    index_dir: Annotated[Path | None, typer.Option(
        "--index-dir", help="Where the dataset's index is built and reused "
        "[default: .qa-eval/<dataset name>].")] = None,
    limit: Annotated[int | None, typer.Option(
        "--limit", min=1, help="Ask only this many questions (a fixed sample).")] = None,
    unanswerable: Annotated[bool, typer.Option(
        "--unanswerable/--no-unanswerable",
        help="SQuAD-style sets: also measure abstention against a corpus lacking half the "
        "articles.")] = True,
    json_out: Annotated[Path | None, typer.Option(
        "--json", help="Also write the report to this JSON file.")] = None,
) -> None:
    """Measure retrieval, answers and abstention on an evaluation dataset."""
    from qa.eval.evaluate import format_report, run_eval
    from qa.index.embed import load_embedder

    settings = _settings()
    root = index_dir or Path(".qa-eval") / (dataset_dir.resolve().name or "dataset")
    report = run_eval(dataset_dir, settings, lambda: load_embedder(settings), root, split=split,
                      limit=limit, unanswerable=unanswerable, progress=_eval_progress())
    typer.echo(format_report(report))
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(report, indent=2) + "\n")
        typer.echo(f"report written to {json_out}")


def _eval_progress() -> Any:
    from tqdm import tqdm

    bars: dict[str, Any] = {}

    def tick(phase: str, done: int, total: int) -> None:
        if phase not in {"ask", "abstain"}:
            return
        if phase not in bars:
            bars[phase] = tqdm(total=total, desc=phase, unit="q", disable=None, file=sys.stderr)
        bar = bars[phase]
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return tick


def _bare_ray_flag(args: list[str]) -> list[str]:
    """`--ray` with no address after it means `--ray auto` (click has no optional values)."""
    return [("--ray=auto" if a == "--ray" and (i + 1 == len(args) or args[i + 1].startswith("-"))
             else a) for i, a in enumerate(args)]


def main() -> None:
    """Entry point: run the CLI, reporting qa's own errors as one line and a non-zero exit."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        app(args=_bare_ray_flag(sys.argv[1:]), standalone_mode=False)
    except QAError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # usage errors arrive here in non-standalone mode
        # Typer may bring its own copy of click, so match click's exceptions by shape, not class.
        name = type(exc).__name__
        if name == "Exit":
            sys.exit(getattr(exc, "exit_code", 0))
        show, code = getattr(exc, "show", None), getattr(exc, "exit_code", None)
        if callable(show) and isinstance(code, int):
            show()
            sys.exit(code)
        if name == "Abort":
            sys.exit(1)
        raise


if __name__ == "__main__":
    main()
