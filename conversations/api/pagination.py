from rest_framework.exceptions import NotFound, ParseError
from rest_framework.pagination import CursorPagination


class InvalidCursor(ParseError):
    """A ``cursor`` this API did not hand out: a client error (400), not a missing page (DRF's 404)."""

    error_code = "invalid_cursor"
    default_detail = (
        "cursor is not one this API gave: pass a page's next or previous link as it is, "
        "or leave cursor out for the first page."
    )


class Cursor(CursorPagination):
    def decode_cursor(self, request):
        try:
            return super().decode_cursor(request)
        except NotFound:
            raise InvalidCursor() from None


class SessionCursor(Cursor):
    """Newest activity first; the cursor stays valid while sessions are created or updated."""

    ordering = ("-updated_at", "-id")
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100


class MessageCursor(Cursor):
    """Oldest first; new messages append at the end and never shift earlier pages."""

    ordering = ("created_at", "id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class ArtifactCursor(Cursor):
    ordering = ("created_at", "id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
