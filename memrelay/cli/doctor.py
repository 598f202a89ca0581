"""`memrelay doctor`: what each backend is and whether it answers."""

from __future__ import annotations

from collections.abc import Callable

import click

from memrelay.engine.core.settings import Settings


def run_doctor(settings: Settings) -> int:
    from memrelay.composition import build_services
    from memrelay.supervise.embedded import EmbeddedRedis, port_open

    failures = 0

    def check(name: str, what: str, fn: Callable[[], str]) -> None:
        nonlocal failures
        try:
            detail = fn()
            click.echo(f"[ ok ] {name:13} {what}  {detail}")
        except Exception as exc:  # report every backend, do not stop at the first
            failures += 1
            click.echo(f"[FAIL] {name:13} {what}  {exc.__class__.__name__}: {exc}")

    services = build_services(settings)

    def sql() -> str:
        services.db.ping()
        return services.db.dialect

    check("sql", services.db.url.split("@")[-1], sql)
    redis_url = settings.redis_url
    if redis_url is None:  # Settings.uses_embedded_redis
        r = EmbeddedRedis(settings.embedded_redis_socket)
        check("redis", f"embedded ({r.url})",
              lambda: "running" if r.is_alive() else "not running (started by `memrelay up`)")
    else:
        import redis

        check("redis", redis_url, lambda: f"ping={redis.Redis.from_url(redis_url).ping()}")
    if settings.milvus_uri is None:
        port_file = settings.data_dir / "milvus.port"
        check("vector index", f"Milvus Lite ({settings.milvus_target})", lambda: (
            "running" if port_file.exists() and port_open(int(port_file.read_text()))
            else "not running (started by `memrelay up`)"))
    else:
        check("vector index", settings.milvus_uri, lambda: str(services.vector_index.ping()))
    check("embedder", settings.embedder, lambda: _embedder_info(settings))
    check("llm", settings.llm_model or "not configured",
          lambda: "LLM features enabled" if settings.llm_configured else "LLM-only features answer 503")
    services.close()
    return 1 if failures else 0


def _embedder_info(settings: Settings) -> str:
    from memrelay.engine.adapters.embedding import build_embedder

    e = build_embedder(settings.embedder, api_base=settings.llm_api_base)
    return f"{e.name} dim={e.dim}"
