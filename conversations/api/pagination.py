from rest_framework.pagination import CursorPagination


class SessionCursor(CursorPagination):
    """Newest activity first; the cursor stays valid while sessions are created or updated."""

    ordering = ("-updated_at", "-id")
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100


class MessageCursor(CursorPagination):
    """Oldest first; new messages append at the end and never shift earlier pages."""

    ordering = ("created_at", "id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class ArtifactCursor(CursorPagination):
    ordering = ("created_at", "id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
