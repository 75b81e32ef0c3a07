"""SQL of the read endpoints (SQLAlchemy Core): `pages` answers a page of sessions in one statement,
`conflicts` reads what the availability and the conflicts of a range need."""
