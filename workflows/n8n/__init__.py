"""memrelay's n8n templates, built on the memrelay node pack (n8n-nodes-memrelay).

Pure: may import the rest of ``memrelay.workflows`` and ``memrelay.engine.domain``."""
