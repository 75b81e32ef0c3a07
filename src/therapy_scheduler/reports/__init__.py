"""Reports for compliance: the monthly supervision report (docs/API.md "Supervision report")."""
