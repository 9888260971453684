"""The HTTP kit, the edge's lower floor: errors, request bodies, CSRF. It stands below the codecs
(which raise its errors and read bodies with its fields) and imports nothing of the app."""
