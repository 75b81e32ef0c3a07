"""Reference data: people, places, vocabularies, organization settings, dropdowns and import."""
