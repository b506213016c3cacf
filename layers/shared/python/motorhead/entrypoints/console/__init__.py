"""The web console: static files (``static/``) served by the console function; the page calls the public API."""
