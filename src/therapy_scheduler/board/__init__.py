"""The schedule board: a static web page served by the app, talking only to the public JSON API."""
