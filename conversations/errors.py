"""Domain errors raised before a turn starts streaming; the edge maps them to HTTP or WS errors."""

from __future__ import annotations


class TurnRejected(Exception):
    """The request cannot start a turn. ``status`` is the HTTP status the edge answers with."""

    status = 422
    code = "invalid_request"

    def __init__(
        self, message: str, *, code: str | None = None, status: int | None = None, **details: object
    ):
        super().__init__(message)
        self.message = message
        self.code = code or self.code
        self.status = status or self.status
        self.details = details


class InvalidTurnInput(TurnRejected):
    status = 422
    code = "invalid_input"


class PayloadTooLarge(TurnRejected):
    status = 413
    code = "payload_too_large"


class UnknownProviderOrModel(TurnRejected):
    status = 422
    code = "unknown_provider_or_model"


class ModelNotFound(UnknownProviderOrModel):
    """The provider does not serve this model name (``GET /v1/models`` lists the ones it does)."""

    code = "model_not_found"


class PriceUnknown(TurnRejected):
    """A budget applies to the turn and its model has no price: it would reserve and spend nothing."""

    status = 422
    code = "price_unknown"


class TurnInProgress(TurnRejected):
    """This message (or another turn of the session) is still streaming."""

    status = 409
    code = "turn_in_progress"


class RepeatedTurnInProgress(TurnInProgress):
    """This very message (its client message id seen before) is still being answered."""


class NotFound(TurnRejected):
    status = 404
    code = "not_found"


class BudgetExceeded(TurnRejected):
    """A budget the turn is charged to has nothing left this period (``resets_at``, ``retry_after``)."""

    status = 429
    code = "budget_exceeded"


class ToolsNotSupported(TurnRejected):
    """Tools were offered to a provider or model that cannot call them (never dropped silently)."""

    status = 422
    code = "tools_not_supported"


class AttachmentsNotSupported(TurnRejected):
    """A file sent to a model that cannot take its type (never dropped silently)."""

    status = 422
    code = "attachments_not_supported"


class InvalidToolResults(TurnRejected):
    """A ``tool`` message that does not answer the calls of the answer it follows: a result for a
    call id that answer did not make, a call left without its result, or no calls to answer."""

    status = 422
    code = "invalid_tool_results"


class ToolCallsAnswered(TurnRejected):
    """The calls were answered already: the conversation has moved on from the answer that made them."""

    status = 409
    code = "tool_calls_answered"
