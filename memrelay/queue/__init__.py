"""The job queue: the Redis connection, every Redis key, the job table and the one enqueue helper.
Imports rq and redis; may import workflows, connectors and the engine, never the gateway or worker."""
