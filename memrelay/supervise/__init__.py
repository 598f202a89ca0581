"""Process supervision: the embedded Redis and Milvus Lite servers and the ``memrelay up``
supervisor (gateway, workers, restarts). May import the edges' start-up, the composition root and below."""
