"""Alembic environment: the URL comes from the caller (memrelay.engine.stores.db.migrate), never from an ini file."""

from alembic import context
from sqlalchemy import create_engine

from memrelay.engine.stores.db.schema import metadata

config = context.config
url = config.get_main_option("sqlalchemy.url")


def run() -> None:
    connectable = config.attributes.get("connection")
    if connectable is not None:
        context.configure(connection=connectable, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    if url is None:
        raise RuntimeError("alembic needs either a 'connection' attribute or the sqlalchemy.url option")
    engine = create_engine(url)
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run()
