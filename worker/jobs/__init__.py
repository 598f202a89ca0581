"""RQ job functions, declared in ``memrelay.queue.jobs.JOBS``. Each takes the worker's ``JobContext`` then
ids and plain JSON, makes one engine call, and lets failures raise (rq's failed registry sees them).
May import the worker context, the queue and everything below; never the gateway."""
