"""The HTTP edge's shared parts: errors, request bodies, CSRF."""
