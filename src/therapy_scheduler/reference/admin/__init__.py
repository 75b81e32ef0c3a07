"""The admin API (SPEC §7.1): an organization's therapists, clients, caseloads, locations, calendars,
authorizations, users and settings, under `/admin`."""
