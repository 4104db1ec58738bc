"""The server matrix: every supported ASGI server, as a subprocess, against one project."""
