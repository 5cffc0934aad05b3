"""Storage: the database (SQLite or PostgreSQL), its tables and their migrations."""
from service.storage.database import Database, DatabaseUrlError, database_url

__all__ = ["Database", "DatabaseUrlError", "database_url"]
