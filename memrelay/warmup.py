"""Warm before ready: load everything a request path would otherwise load on its first call.

Lives next to :mod:`memrelay.composition` (it touches every service), below the gateway and the worker that
call it. A gunicorn web worker runs :func:`warm_services` from ``post_worker_init`` (before it accepts a connection),
an RQ worker before it registers (so before it counts as a live worker for ``/readyz``). What is loaded:

* every service of :class:`~memrelay.composition.Services` (their modules are imported on first use);
* SQLAlchemy's mappers (configured on the first ORM query) and one pooled connection;
* the API key lookup (an unknown key looked up: its statement compiled);
* the embedder, its tokenizer and its first ``embed`` (WordLlama/MiniLM load seconds of weights);
* the cl100k token encoding (digests and context budgets count tokens);
* litellm, when an LLM or a litellm embedder is configured (its import alone takes seconds and ~200 MB,
  so a process without a model does not pay it);
* the Milvus client, when this process may query Milvus (``MEMRELAY_MILVUS_URI`` set: the server
  configuration) — below the org-wide threshold recall does not use it;
* one memorize and one structured upsert, each rolled back (the write paths' statements compiled, nothing
  committed or indexed); scoped recalls of a record holding memories, by key and by id (their statements, topic
  readings and subject-free scoring); that record's smart digest and, in a web worker, ``/similar`` seeded by it;
* the offline extractor on each org's schemas (lexicons, regexes and the schema vectors, cached per text),
  for up to ``MAX_WARM_ORGS`` orgs;
* each of those orgs' guidelines, split and embedded for fast routing (the per-process guideline index), and a
  fast smart-guidelines call (routing and context compilation): the first call otherwise prepared every
  guideline of the org — 82 ms against 6 ms warm for 20 guidelines (``bench/bench_warm.py``);
* each of those orgs' shared org-wide vector index (memory-mapped, see
  :mod:`memrelay.engine.memory.org_vectors`) and an org-wide recall — in a web worker only (``org_index``): an RQ
  worker's jobs recall by record, and the rare org-wide one (a workflow step) maps the index on first use, so
  four processes do not each keep every vector page resident (50k memories: 49 MB of RSS per process);
* last, a full garbage collection, and the survivors frozen (``gc.freeze``): no request pays for collecting what
  warming allocated.

Failures of optional steps are recorded; a failure of a required one (embedder, litellm when configured)
makes :attr:`WarmReport.ok` False, and ``/readyz`` reports the process not ready.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from memrelay.composition import Services

log = logging.getLogger("memrelay.warm")

MAX_WARM_ORGS = 20
CLOSED_PORT = 9  # discard: nothing listens on loopback, a connection is refused at once
WARM_TEXT = "Jane Doe is the CTO at Acme; they moved to the customer stage and use PostgreSQL."
WARM_REPEATS = 10
"""Runs of each hot request path while warming. CPython 3.11's adaptive interpreter specialises a function's
bytecode only after it has run about eight times; a path run once or twice while warming stays generic, and the
first requests pay for it: a record's first scoped recall after warm-up took 2.7 ms against 1.1-1.2 ms once the
path had run ten times (the entity cache's miss both times; measured in one warm process, 2,000 memories)."""


@dataclass
class WarmReport:
    """What warming did in this process: per step its seconds or its error."""

    pid: int = field(default_factory=os.getpid)
    steps: dict[str, float] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    required_failed: list[str] = field(default_factory=list)
    seconds: float = 0.0
    done: bool = False

    @property
    def ok(self) -> bool:
        return self.done and not self.required_failed

    def as_dict(self) -> dict[str, Any]:
        return {"pid": self.pid, "done": self.done, "seconds": round(self.seconds, 3),
                "steps": {k: round(v, 3) for k, v in self.steps.items()}, "errors": self.errors,
                "requiredFailed": self.required_failed}


def llm_needed(services: Services) -> bool:
    """Whether a request path of this process may import litellm (a model or a litellm embedder)."""
    s = services.settings
    return bool(s.llm_configured) or s.embedder.strip().lower().startswith("litellm:")


def warm_services(services: Services, *, max_orgs: int = MAX_WARM_ORGS, org_index: bool = True) -> WarmReport:
    """Load what the request paths of ``services`` need, step by step (see the module docstring); ``org_index``
    False (an RQ worker) leaves the org-wide index unmapped."""
    report = WarmReport()
    t_all = time.perf_counter()

    def step(name: str, fn: Any, *, required: bool = False) -> None:
        t = time.perf_counter()
        try:
            fn()
            report.steps[name] = time.perf_counter() - t
        except Exception as exc:  # warming reports; the probe and the first request see the real error
            report.errors[name] = f"{exc.__class__.__name__}: {exc}"
            if required:
                report.required_failed.append(name)
            log.warning("warm-up step %s failed", name, exc_info=True)

    def build_all() -> None:
        from memrelay.composition import Services as _S

        for name, attr in vars(_S).items():
            if isinstance(attr, cached_property):
                getattr(services, name)

    def sql() -> None:
        from sqlalchemy.orm import configure_mappers

        configure_mappers()
        services.db.ping()

    def embedder() -> None:
        services.embedder.get()
        services.embedder.embed([WARM_TEXT])

    def key_lookup() -> None:  # every request's API key lookup: its driver statement compiled on first use
        from memrelay.engine.core.errors import Unauthorized
        from memrelay.engine.stores.tenancy import KEY_PREFIX

        with contextlib.suppress(Unauthorized):
            services.tenancy.authenticate(KEY_PREFIX + "warm-up")

    def tokenizer() -> None:  # digests, context budgets: the cl100k encoding is built on first count
        from memrelay.engine.core.tokens import count_tokens

        count_tokens(WARM_TEXT)

    def llm() -> None:
        from memrelay.engine.adapters.llm.runtime import litellm

        # litellm's first completion imports the provider SDK's resources (openai: ~2.5 s) and builds its
        # pipeline; a mocked completion runs that pipeline without a network call.
        with contextlib.suppress(ImportError):
            import httpcore  # noqa: F401  (litellm's HTTP transport, imported on its first client)
            import openai.resources  # noqa: F401
        model = services.settings.llm_model or "openai/gpt-4o-mini"
        messages = [{"role": "user", "content": WARM_TEXT}]
        litellm.completion(model=model, messages=messages, mock_response="ok")
        litellm.token_counter(model=model, messages=messages)
        # The provider client (HTTP transport, request models) is built on the first real request: send one
        # to a closed loopback port (refused at once; nothing leaves the machine, no provider is billed).
        with contextlib.suppress(Exception):
            litellm.completion(model=model, messages=messages, api_base=f"http://127.0.0.1:{CLOSED_PORT}/v1",
                               api_key="warm-up", max_retries=0, num_retries=0, timeout=2)

    step("services", build_all)
    step("sql", sql)
    step("key lookup", key_lookup)
    step("embedder", embedder, required=True)
    step("tokenizer", tokenizer)
    if llm_needed(services):
        step("litellm", llm, required=True)
        step("prompt", lambda: _warm_prompt(services))
    if services.settings.milvus_uri and services.vector_index.available():  # an on-demand one starts later
        def milvus() -> None:
            """The client, its channel and the current collection — unless that collection exists and is not
            loaded: loading a large one can take minutes (Milvus Lite) and start-up must not wait for it
            (CONVENTIONS); the first write after such a restart pays the load, as before."""
            vi = services.vector_index
            vi.ping()
            name = services.index.current_collection()
            if not vi.has_collection(name) or "Loaded" in str(vi.client.get_load_state(name).get("state")):
                vi.ensure_collection(name, services.embedder.dim)

        step("milvus", milvus)
    step("orgs", lambda: _warm_orgs(services, max_orgs, org_index=org_index))
    step("gc", _settle_heap)
    report.seconds = time.perf_counter() - t_all
    report.done = True
    log.info("warmed", extra={"warm": report.as_dict()})
    return report


WARM_COMPLETION = {
    "id": "chatcmpl-warm-up", "object": "chat.completion", "created": 0, "model": "gpt-4o-mini",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello Jane, thanks for the call."},
                 "finish_reason": "stop", "logprobs": None}],
    "usage": {"prompt_tokens": 12, "completion_tokens": 8, "total_tokens": 20,
              "prompt_tokens_details": {"cached_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": 0}},
}
"""The answer of the warm-up's loopback model (OpenAI's chat completion shape)."""


@contextlib.contextmanager
def _canned_model() -> Iterator[str]:
    """An OpenAI-compatible chat endpoint on loopback answering :data:`WARM_COMPLETION`; yields its base URL."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    body = json.dumps(WARM_COMPLETION).encode()

    class Canned(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")  # no kept-alive connection, so no handler thread, outlives us
            self.end_headers()
            self.wfile.write(body)
            self.close_connection = True

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Canned)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, name="warm-up-model",
                              daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _warm_prompt(services: Services) -> None:
    """One ``/prompt`` run through the whole generation path — memory context, guidelines, the LLM client with
    its budget check and usage row, litellm's and the OpenAI SDK's request and response models (built lazily on
    the first parsed answer: ~9 ms), memorize-back — against a loopback model (:func:`_canned_model`): nothing
    leaves the machine, no provider is billed, and the unit of work is rolled back, so nothing is kept. The
    org is the most recent one with a record holding memories."""
    from pydantic import SecretStr
    from sqlalchemy import select

    from memrelay.engine.guidance.generation import Generation, PromptRequest
    from memrelay.engine.stores.db.models import Memory, Org
    from memrelay.engine.stores.metered_llm import LLMService

    with services.db.read() as s:
        found = s.execute(select(Memory.org_id, Memory.record_id).join(Org, Org.id == Memory.org_id)
                          .where(Memory.record_id.is_not(None)).order_by(Org.created_at.desc()).limit(1)).first()
    if found is None:
        return
    org_id, record_id = found
    model = services.settings.llm_model or ""
    with _canned_model() as base:
        canned = services.settings.model_copy(update={
            "llm_model": model if model.startswith("openai/") else "openai/gpt-4o-mini", "llm_model_pro": None,
            "llm_model_ultra": None, "llm_api_base": base, "llm_api_key": SecretStr("warm-up")})
        generation = Generation(services.db, LLMService(services.db, canned), guidelines=services.governance,
                                recall=services.recall, digests=services.digests, memories=services.memories)
        request = PromptRequest.model_validate({
            "instructions": [{"prompt": "Write one line to this contact about their database.", "maxSteps": 1}],
            "identifiers": {"recordId": record_id}, "memorize": {"recordId": record_id, "captureOutputs": True}})
        for _ in range(2):
            try:
                with services.db.unit_of_work():
                    generation.generate(org_id, request)
                    raise _RollBack
            except _RollBack:
                pass


def _warm_orgs(services: Services, max_orgs: int, *, org_index: bool = True) -> None:
    """Schema vectors and extraction tables of each (recent) org's entity types, and (``org_index``) its org-wide
    index."""
    from sqlalchemy import select

    from memrelay.engine.core.util import utcnow
    from memrelay.engine.domain.extraction.offline import extract_properties
    from memrelay.engine.stores.db.models import EntityType, Org

    with services.db.read() as s:
        orgs = list(s.scalars(select(Org.id).order_by(Org.created_at.desc()).limit(max_orgs)))
        types = s.execute(select(EntityType.org_id, EntityType.name).where(
            EntityType.org_id.in_(orgs), EntityType.archived_at.is_(None))).all() if orgs else []
        for org_id, name in types:
            schema = services.collections.schema_for(s, org_id, name)
            if schema:
                extract_properties(WARM_TEXT, list(schema.values()), ts=utcnow(), embedder=services.embedder)
    _guidelines(services, orgs)
    emb = services.embedder
    if org_index:
        with services.db.read() as s:  # map each org's shared org-wide snapshot (built once, by whoever is first)
            for org_id in orgs:
                services.recall.exact.warm(s, org_id, embedder=emb.name, dim=emb.dim)
    if orgs:  # read-only passes through recall and search: SQLAlchemy compiles their statements once
        from memrelay.engine.memory.recall import RecallRequest

        if org_index:
            for _ in range(WARM_REPEATS):
                services.recall.smart_recall(orgs[0], RecallRequest(query=WARM_TEXT, limit=1))
        for _ in range(WARM_REPEATS):
            _rolled_back_memorize(services, orgs[0])
        _search(services, orgs[0])
        for _ in range(WARM_REPEATS):
            _rolled_back_upsert(services, orgs[0])
        seed = _scoped_recall(services, orgs[0])
        if seed is not None:
            _digest(services, orgs[0], seed)
        if org_index and seed is not None:  # /similar ranks with the org-wide index: a web worker's path
            _similar(services, orgs[0], seed)


def _guidelines(services: Services, orgs: list[str]) -> None:
    """Each org's guidelines prepared for routing (cached per process, by version), then fast smart-guidelines
    calls on the first org holding any, ``WARM_REPEATS`` times (read-only: no session, nothing delivered)."""
    from memrelay.engine.guidance.governance import SmartGuidelinesRequest

    with_guidelines = [org_id for org_id in orgs if services.governance.routable(org_id).guidelines]
    for _ in range(WARM_REPEATS if with_guidelines else 0):
        services.governance.smart_guidelines(with_guidelines[0], SmartGuidelinesRequest(message=WARM_QUESTION))


def _search(services: Services, org_id: str) -> None:
    """A typed search as the API runs it, ``WARM_REPEATS`` times: the first reads the org's facts (type, schema,
    keys) and the page, the next ones — the facts now known to this process — the one statement every later search
    runs (see ``search_page``); each renders and documents a page of 10 records (their statements and JSON). A
    one-record page run twice left the first API search (10 records) at 2.2–2.3× its warm p50 in
    `bench/bench_warm.py`; three 10-record pages at 1.2–1.6×."""
    from memrelay.engine.stores.identity import Identifiers
    from memrelay.engine.stores.search import SearchQuery, search_page

    query = SearchQuery(identifiers=Identifiers(type="contact"), limit=10)
    for _ in range(WARM_REPEATS):
        with services.db.read() as s:
            rows = search_page(s, services.collections, org_id, query).rows
            services.records.documented_records(s, org_id, services.records.render(s, rows))


WARM_QUESTION = "Which database and cloud does Jane Doe's team use, and who decides?"


def trim_heap() -> bool:
    """Give the C heap's free pages back to the OS (glibc ``malloc_trim``): what loading and warming allocated
    and freed (a throwaway service graph, a rank file's parse) otherwise stays resident — and, in a process about
    to fork, resident in every child too. False where the C library is not glibc."""
    try:
        import ctypes

        return bool(ctypes.CDLL("libc.so.6").malloc_trim(0))
    except (OSError, AttributeError):
        return False


def _settle_heap() -> None:
    """Collect what warming left behind, then freeze the survivors (the imported modules, loaded weights, caches):
    a full collection over them — hundreds of milliseconds after litellm and the embedder are loaded — would
    otherwise fall on whichever request happens to trigger it, and with them frozen later collections only walk
    what requests allocate (as :func:`preload_for_fork` does in a parent before it forks)."""
    import gc

    gc.collect()
    trim_heap()
    gc.freeze()


def _digest(services: Services, org_id: str, record_id: str) -> None:
    """A record's smart digest (properties, recent memories, linked records, token budget), ``WARM_REPEATS``
    times (read-only)."""
    from memrelay.engine.memory.digest import DigestRequest
    from memrelay.engine.stores.identity import Identifiers

    for _ in range(WARM_REPEATS):
        services.digests.digest(org_id, DigestRequest(identifiers=Identifiers(record_id=record_id)))


def _similar(services: Services, org_id: str, record_id: str) -> None:
    """``/similar`` seeded by a record holding memories, ``WARM_REPEATS`` times (read-only): its seed reading,
    property vectors and ranking over the org-wide index, compiled and specialised."""
    from memrelay.engine.memory.similar import SimilarRequest

    for _ in range(WARM_REPEATS):
        services.similarity.similar(org_id, SimilarRequest.model_validate({"recordId": record_id, "topK": 10}))


def _scoped_recall(services: Services, org_id: str) -> str | None:
    """Scoped recalls (a topic question about a record holding memories) naming the record each way a request
    can — by one of its keys, by that key with its type, by ``record_id`` — so that each variant of the
    record-scoped statements (identity.holders), the question's topic readings and the subject-free scoring
    (numpy's LAPACK) are compiled; the first names the record while it is not cached (the entity cache's miss
    path: its memories and names read and embedded). Then up to ``WARM_REPEATS`` other records holding memories,
    each recalled once (the miss path, run enough times to be specialised), and the first record by key as many
    times (the cached path). Returns the first record's id (None: no record holds memories)."""
    from sqlalchemy import select

    from memrelay.engine.memory.recall import RecallRequest
    from memrelay.engine.stores.db.models import Memory, Record, RecordKey
    from memrelay.engine.stores.identity import Identifiers, field_for_key_name

    with services.db.read() as s:
        found = s.execute(select(Memory.record_id, Record.entity_type).join(Record, Record.id == Memory.record_id)
                          .where(Memory.org_id == org_id, Record.deleted_at.is_(None))
                          .group_by(Memory.record_id, Record.entity_type).limit(WARM_REPEATS + 1)).all()
        if not found:
            return None
        record_id, entity_type = found[0]
        key = s.execute(select(RecordKey.key_name, RecordKey.key_value).where(RecordKey.record_id == record_id)
                        .order_by(RecordKey.id).limit(1)).first()
    by_key = None
    if key is not None:
        name, value = field_for_key_name(key[0]), key[1]
        by_key = Identifiers.model_validate({name: value} if key[0] in ("email", "website_url", "record_id")
                                            else {"customKeys": {name: value}})
    for ids in ([by_key, by_key.model_copy(update={"type": entity_type})] if by_key is not None else []) + [
            Identifiers(record_id=record_id)]:
        services.recall.smart_recall(org_id, RecallRequest(query=WARM_QUESTION, limit=1, identifiers=ids))
    for other, _ in found[1:]:
        services.recall.smart_recall(org_id, RecallRequest(query=WARM_QUESTION, limit=1,
                                                           identifiers=Identifiers(record_id=other)))
    # by key again, the record now cached: its lookup is the session's first read and runs on the driver connection
    # (stores/db/driver_select.py), whose statement is compiled on that first run
    for _ in range(WARM_REPEATS if by_key is not None else 0):
        services.recall.smart_recall(org_id, RecallRequest(query=WARM_QUESTION, limit=1, identifiers=by_key))
    return str(record_id)


class _RollBack(Exception):
    """Raised inside the warm-up's unit of work so that nothing it wrote is committed."""


def _rolled_back_memorize(services: Services, org_id: str) -> None:
    """One memorize through the whole write path (identity, extraction, dedup, SQL writes and their compiled
    statements, events) inside a unit of work that is rolled back: nothing is committed, and the index push,
    which waits for the commit, never runs."""
    from memrelay.engine.memory.memories import MemorizeRequest

    try:
        with services.db.unit_of_work():
            services.memories.memorize(org_id, MemorizeRequest(content=WARM_TEXT, email="warm-up@example.com",
                                                               type="contact"))
            raise _RollBack
    except _RollBack:
        pass


def _rolled_back_upsert(services: Services, org_id: str) -> None:
    """Two structured upserts of one record (identity, typed properties, history, events) inside a unit of work that
    is rolled back, as :func:`_rolled_back_memorize`: the first creates the record, the second changes its values —
    the path of an upsert to an existing record (its UPDATE statements and history rows; without it the first such
    API call compiled them: 3.3× its warm p50 in `bench/bench_warm.py`)."""
    from memrelay.engine.stores.identity import Identifiers
    from memrelay.engine.stores.properties import Provenance

    who = Identifiers(email="warm-up@example.com", type="contact")
    try:
        with services.db.unit_of_work():
            services.records.upsert(org_id, who, {"first_name": "Jane", "job_title": "CTO"}, Provenance(actor="warm-up"))
            services.records.upsert(org_id, who, {"first_name": "Janet", "job_title": "CFO"},
                                    Provenance(actor="warm-up"))
            raise _RollBack
    except _RollBack:
        pass


def loaded_modules(names: tuple[str, ...] = ("litellm", "sentence_transformers", "pymilvus")) -> dict[str, bool]:
    """Which heavy modules this process holds (for the readiness detail). WordLlama is not among them: its
    bundled files are read without importing the package (``embedderLoaded`` says whether they are loaded)."""
    return {n: n in sys.modules for n in names}


# --- shared before fork -----------------------------------------------------------------------------------------
PRELOADED_MODULES = (
    "memrelay.composition", "memrelay.gateway.app", "memrelay.gateway.blueprints", "memrelay.gateway.console",
    "memrelay.worker.main", "memrelay.worker.jobs", "memrelay.engine.memory.recall", "memrelay.engine.memory.memories",
    "memrelay.engine.memory.batch", "memrelay.engine.ingest.pipeline", "memrelay.engine.stores.search",
    "memrelay.engine.domain.extraction.offline", "memrelay.workflows.runner", "memrelay.workflows.steps",
)
"""Modules a web or RQ worker imports anyway: imported once in the parent, their pages are shared after fork."""

FORK_SHARED_EMBEDDERS = ("wordllama",)
"""Local embedders whose loaded weights a parent may hand to forked children: plain arrays, no thread pool. MiniLM
(torch: an OpenMP pool that does not survive a fork) is loaded after the fork, in each process."""


class NotForkSafe(RuntimeError):
    """A process that is about to fork children holds something a child must not inherit (a thread)."""


def fork_safe_or_raise(what: str) -> None:
    """Refuse to fork while another Python thread runs: a lock it holds, or its half-written state, would be
    copied into the child with no thread to release or finish it."""
    import threading

    others = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    if others:
        raise NotForkSafe(f"{what}: threads {others} run in the parent; children must be built after fork")


def preload_for_fork(settings: Any) -> dict[str, float]:
    """Load, in a process that will fork workers, what every worker needs and what survives a fork untouched:
    the modules of :data:`PRELOADED_MODULES`, SQLAlchemy's configured mappers, a local embedder's weights
    (:data:`FORK_SHARED_EMBEDDERS`: cached per process by the embedder factory, so each child's services find them)
    and the token encoding. Then ``gc.freeze()``: the collector never writes to these objects again, so their
    pages stay shared copy-on-write with every child.

    Nothing here opens a connection (SQL, Redis, Milvus), starts a thread or imports litellm (its import starts
    a thread and may reach the network); each child builds its own services and runs :func:`warm_services`
    before it is ready (a preloaded step is then a cache hit). Idempotent; raises :class:`NotForkSafe` when a
    thread runs afterwards. Returns seconds per step."""
    import gc
    import importlib

    steps: dict[str, float] = {}
    t = time.perf_counter()
    for name in PRELOADED_MODULES:
        importlib.import_module(name)
    from sqlalchemy.orm import configure_mappers

    configure_mappers()
    steps["modules"] = time.perf_counter() - t
    spec = str(getattr(settings, "embedder", "") or "wordllama")
    if spec.strip().lower().partition(":")[0] in FORK_SHARED_EMBEDDERS:
        t = time.perf_counter()
        from memrelay.engine.adapters.embedding.factory import build_embedder

        build_embedder(spec)
        steps["embedder"] = time.perf_counter() - t
    t = time.perf_counter()
    from memrelay.engine.core.tokens import encoding

    encoding()
    steps["tokenizer"] = time.perf_counter() - t
    fork_safe_or_raise("preload before fork")
    gc.collect()
    gc.freeze()
    return steps
