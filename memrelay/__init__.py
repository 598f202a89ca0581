"""memrelay command line and process supervision (embedded Redis/Milvus Lite, gunicorn, RQ workers)."""
