"""The WebSockets, in one room: the chat socket (``chat.py``, ``ws/chat/{key}/``), the AI SDK's
socket transport (``ai_sdk.py``, ``ws/ai-sdk/chat``), their shared parts without a socket
(``frames.py``: reading a frame, the frame rate, the order events go out), the tickets a browser
authenticates a socket with (``tickets.py``, and the HTTP endpoint that issues them,
``ticket_view.py``) and the socket URL patterns (``routing.py``). The fan-out they listen to
(``conversations/local_fanout.py``, ``conversations/presence.py``) belongs to the turn jobs and
stays beside them."""
