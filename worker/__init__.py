"""The worker edge (``memrelay.worker``): the worker process (``main.run_worker``: services built once, jobs
run in-process by ``runtime.MemrelayWorker``), its maintenance loops (sweeper, rq scheduler, webhook
dispatcher) and the job functions of ``memrelay.queue.jobs.JOBS``. May import the composition root, the queue,
workflows, connectors and the engine; never the gateway (its sibling edge) or the CLI."""
