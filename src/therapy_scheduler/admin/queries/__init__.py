"""SQL of the admin API (SQLAlchemy Core), one module per resource; `records` holds what they share:
keyset pages and the read, insert and update of one record of an organization's table."""
