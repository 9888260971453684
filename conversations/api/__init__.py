"""The history REST API (Django REST framework): sessions, messages, artifacts, export/import."""
