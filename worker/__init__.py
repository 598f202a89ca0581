"""RQ edge: Redis connection (embedded or external), queues, jobs. Jobs are thin calls into the engine."""
