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

    from qa.library import Index

    settings = _settings(corpus_dir=corpus_dir, index_dir=index_dir)
    if ray is not None and watch:
        raise QAError("--watch rebuilds locally; run it without --ray")
    pipeline: Any = None
    if ray is not None:  # connects now: a bad address fails before anything is written
        from qa.index.distributed import RayPipeline

        pipeline = RayPipeline(settings, ray)
    with pipeline if pipeline is not None else nullcontext(), Index.build(
            settings=settings, full=full, progress=_progress_bar(), pipeline=pipeline) as built:
        assert built.last_build is not None
        _print_report(built.last_build, settings, as_json)
        factory = built.embedder_factory
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
    from qa.library import Index
    from qa.search.engine import check_question

    settings = _settings(index_dir=index_dir)
    check_question(question, settings.max_question_chars)  # fail fast, before loading anything
    with Index.open(settings=settings) as index:
        answer = index.ask(question, k=k)
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
    collection: Annotated[list[str] | None, typer.Option(
        "--collection", metavar="NAME=PATH",
        help="Serve the corpus folder PATH as the collection NAME; repeat for more (the first "
        "is the default). Its index is PATH/.qa-index unless --index-root is given "
        "[env QA_COLLECTIONS, a JSON object].")] = None,
    index_root: Annotated[Path | None, typer.Option(
        "--index-root", help="Keep each collection's index in INDEX_ROOT/NAME "
        "[env QA_COLLECTION_INDEX_ROOT].")] = None,
) -> None:
    """Serve the chat page, the JSON API and OpenAI-compatible endpoints."""
    import uvicorn

    from qa.library import Index
    from qa.server.api import create_app
    from qa.server.collections import collection_settings, parse_collection

    logging.getLogger("qa").setLevel(logging.INFO)
    named: dict[str, Path] | None = None
    if collection:
        if corpus_dir is not None or index_dir is not None:
            raise typer.BadParameter("give either --corpus/--index or --collection, not both",
                                     param_hint="--collection")
        named = {}
        for text in collection:
            try:
                name, path = parse_collection(text)
            except ValueError as exc:
                raise typer.BadParameter(str(exc), param_hint="--collection") from exc
            if name in named:
                raise typer.BadParameter(f"collection {name!r} is given twice",
                                         param_hint="--collection")
            named[name] = path
    settings = _settings(corpus_dir=corpus_dir, index_dir=index_dir, host=host, port=port,
                         collections=named, collection_index_root=index_root)
    factory = None
    for name, own in collection_settings(settings):
        # Built if missing; errors end here, as one line. Every collection shares one model.
        with Index.load(own, factory) as index:
            index.load_model()
            factory = index.embedder_factory
        if settings.collections:
            typer.echo(f"collection {name}: {own.corpus_dir} (index {own.index_dir})", err=True)
    where = "collections" if settings.collections else settings.index_dir
    typer.echo(f"serving {where} on http://{settings.host}:{settings.port}", err=True)
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


# --- feedback given in the chat page -------------------------------------------------------------

feedback_app = typer.Typer(no_args_is_help=True,
                           help="Feedback given on answers in the chat page.")
app.add_typer(feedback_app, name="feedback")


@feedback_app.command("export")
def feedback_export(
    out: Annotated[Path, typer.Argument(help="Folder to write the evaluation set into.")],
    index_dir: IndexOpt = None,
) -> None:
    """Write the rated questions as an evaluation set that 'qa eval OUT' runs."""
    from qa.index.index_dir import IndexDir
    from qa.server.feedback import FILE_NAME, FeedbackStore, export

    settings = _settings(index_dir=index_dir)
    path = settings.index_dir / FILE_NAME
    if not path.is_file():
        raise QAError(f"no feedback at {path}: answers are rated in the chat page ('qa serve')")
    version = IndexDir(settings.index_dir).open_current()
    try:
        report = export(FeedbackStore(path), version, out)
    finally:
        version.close()
    typer.echo(f"wrote {out}: {report.scored} questions to score (marked good), "
               f"{report.kept} kept for review (marked bad, or rightly not answered), "
               f"{report.documents} documents")
    for reason in report.skipped:
        typer.echo(f"  skipped {reason}")
    if report.kept:
        typer.echo("  the questions kept for review have is_impossible set, so 'qa eval' skips "
                   "them; give one answers and a gold_doc and drop is_impossible to score it")
    typer.echo(f"run it with: qa eval {out}")


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
