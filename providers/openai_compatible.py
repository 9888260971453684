"""Any server that speaks OpenAI Chat Completions: Ollama, vLLM, llama.cpp server, LM Studio, gateways.

A thin subclass of :class:`~providers.openai_chat.OpenAIChatProvider`: the base URL is required,
the API key is optional (local servers ignore it, but the SDK insists on one, so a placeholder is
sent), and the output cap is sent as ``max_tokens``, the name these servers understand.

Client tools go out in the Chat Completions shape, as to OpenAI, but only to the models the operator
says can call them (``OPENAI_COMPATIBLE_TOOL_MODELS``: comma-separated names, ``*`` for every model,
the default; empty for none): a local model without function calling would ignore the tools or answer
nonsense, so a turn that offers tools to it is refused before any call (:meth:`tools_supported`).

Images and files go in the Chat Completions shape too (:mod:`providers.openai_chat_files`), within
what these servers take: images only to the models ``OPENAI_COMPATIBLE_ATTACHMENT_MODELS`` names
(comma-separated, ``*`` and ``?`` as globs, e.g. ``llava*,qwen2.5vl*,gemma3*``; empty, the default,
for none: a text model would ignore an image or fail), always as a data URL of their bytes (these
servers are not asked to fetch a URL: :meth:`fetches_urls` is False, so the server fetches it
first); text files to every model, as text parts; no PDFs (a ``file`` part is OpenAI's own).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import ClassVar

from .base import IMAGE_TYPES, TEXT, Timeouts
from .model_globs import matches, parse_globs
from .openai_chat import OpenAIChatProvider

PLACEHOLDER_API_KEY = "not-needed"
#: ``OPENAI_COMPATIBLE_TOOL_MODELS`` entry meaning every model may be offered tools (the default).
ANY_TOOL_MODEL = "*"


def parse_tool_models(value: str | Iterable[str]) -> frozenset[str]:
    """The model names of ``OPENAI_COMPATIBLE_TOOL_MODELS`` (a comma-separated string or a list),
    blanks dropped: empty means no model, ``*`` among them every model."""
    names = value.split(",") if isinstance(value, str) else value
    return frozenset(name.strip() for name in names if name.strip())


class OpenAICompatibleProvider(OpenAIChatProvider):
    kind: ClassVar[str] = "openai-compatible"
    supports_tools: ClassVar[bool] = True  # narrowed per model: tools_supported
    key_env_var: ClassVar[str | None] = "OPENAI_COMPATIBLE_API_KEY"
    max_tokens_param: ClassVar[str] = "max_tokens"
    remote_images: ClassVar[bool] = False

    def __init__(
        self,
        *,
        name: str | None = None,
        default_model: str,
        base_url: str,
        api_key: str | None = None,
        timeouts: Timeouts | None = None,
        max_retries: int = 0,
        extra_headers: Mapping[str, str] | None = None,
        http_transport: str = "asyncio",
        tool_models: str | Iterable[str] = ANY_TOOL_MODEL,
        attachment_models: str | Iterable[str] = "",
    ) -> None:
        super().__init__(
            name=name,
            default_model=default_model,
            api_key=api_key or PLACEHOLDER_API_KEY,
            base_url=base_url,
            timeouts=timeouts,
            max_retries=max_retries,
            extra_headers=extra_headers,
            http_transport=http_transport,
        )
        self.tool_models = parse_tool_models(tool_models)
        self.attachment_models = parse_globs(attachment_models)

    def tools_supported(self, model: str) -> bool:
        """Whether ``model`` is one ``OPENAI_COMPATIBLE_TOOL_MODELS`` names (or it says ``*``)."""
        return ANY_TOOL_MODEL in self.tool_models or model in self.tool_models

    def attachment_types(self, model: str) -> frozenset[str]:
        """Text files for every model; images too for a model ``OPENAI_COMPATIBLE_ATTACHMENT_MODELS``
        matches; never PDFs."""
        return IMAGE_TYPES | {TEXT} if matches(model, self.attachment_models) else frozenset({TEXT})
