"""Core types of memrelay: the error tree, settings, small utilities, token counting, the embedder
protocol. Pure: imports only the standard library, pydantic and numpy, nothing else of memrelay."""
