"""Authentication (JWT → user row), the capability table, and tenant/role scoping of queries."""
