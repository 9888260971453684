"""The image and file parts of the OpenAI wires (Chat Completions, Responses) and of Z.AI's, checked
as strictly as the providers check them, and read into :class:`~.attachments.Received`.

Chat Completions (``messages[].content`` lists; :func:`chat_received`), as OpenAI takes them:

* ``{"type":"text","text"}``; ``{"type":"refusal","refusal"}`` in an assistant message;
* ``{"type":"image_url","image_url":{"url","detail"?}}``: ``image_url`` an OBJECT (a string is a
  400 ``invalid_type``), ``url`` an http(s) URL or a ``data:image/<png|jpeg|webp|gif>;base64,…``
  URL whose payload is base64, ``detail`` one of auto, low, high, original, no other key;
* ``{"type":"file","file":{"filename","file_data"}}`` (``file_data`` a ``data:application/pdf;
  base64,…`` URL, ``filename`` required with it) or ``{"file":{"file_id"}}``; no ``file_url``;
* images and files only in ``user`` messages; any other part type is a 400 ``invalid_value``.

Z.AI (``zai=True``): the same ``text`` and ``image_url`` parts, where ``url`` may also be bare
base64 (zai-sdk strips the data URL's prefix: the type is read from the bytes' signature); no
``file`` part.

Responses (``input[].content`` lists; :func:`responses_received`):

* ``input_text``; ``output_text``/``refusal`` in an assistant message;
* ``{"type":"input_image","image_url"|"file_id","detail"}``: ``image_url`` a STRING (an object is
  a 400 ``invalid_type``), a URL or an image data URL; ``detail`` required (the SDK's types say
  so), one of auto, low, high, original;
* ``{"type":"input_file", one of "file_data" (a PDF data URL, with "filename") | "file_url" (http(s))
  | "file_id", "detail"?}``;
* images and files only in user messages; any other part type is a 400.
"""

from __future__ import annotations

from typing import Any

from .attachments import IMAGE_TYPES, PDF, Received, decode_base64, parse_data_url, remote, sniff_image

DETAILS = ("auto", "low", "high", "original")


class PartError(Exception):
    """A part the provider would refuse: OpenAI's message, the ``param`` it names and its ``code``."""

    def __init__(self, message: str, param: str, code: str = "invalid_value") -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code


def _kind(value: Any) -> str:
    names = {str: "a string", dict: "an object", list: "an array", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


def _values(options: tuple[str, ...]) -> str:
    quoted = [f"'{o}'" for o in options]
    return ", ".join(quoted[:-1]) + f", and {quoted[-1]}" if len(quoted) > 2 else " and ".join(quoted)


def _only(part: dict[str, Any], keys: tuple[str, ...], where: str) -> None:
    for key in part:
        if key not in keys:
            raise PartError(f"Unknown parameter: '{where}.{key}'.", f"{where}.{key}", "unknown_parameter")


def _string(part: dict[str, Any], key: str, where: str) -> str:
    value = part.get(key)
    if value is None:
        raise PartError(
            f"Missing required parameter: '{where}.{key}'.", f"{where}.{key}", "missing_required_parameter"
        )
    if not isinstance(value, str):
        raise PartError(
            f"Invalid type for '{where}.{key}': expected a string, but got {_kind(value)} instead.",
            f"{where}.{key}",
            "invalid_type",
        )
    return value


def _detail(part: dict[str, Any], where: str, *, required: bool) -> None:
    if "detail" not in part and not required:
        return
    detail = _string(part, "detail", where)
    if detail not in DETAILS:
        raise PartError(
            f"Invalid value: '{detail}'. Supported values are: {_values(DETAILS)}.", f"{where}.detail"
        )


def _image(url: str, where: str, *, bare: bool = False) -> Received:
    """An image URL: http(s), an image data URL, or (``bare``) base64 alone."""
    if remote(url):
        return Received(url=url)
    decoded = parse_data_url(url)
    if decoded is not None:
        media_type, data = decoded
        if media_type not in IMAGE_TYPES:
            raise PartError(
                f"Invalid MIME type '{media_type}' in '{where}': expected one of {', '.join(IMAGE_TYPES)}.",
                where,
            )
        return Received(media_type, data)
    if bare and not url.startswith("data:"):
        data = decode_base64(url)
        if data is not None:
            return Received(sniff_image(data), data)
    raise PartError(
        f"Invalid '{where}': expected an http(s) URL or a base64-encoded data URL of an image "
        "(data:image/png;base64,...).",
        where,
    )


def _pdf_data(value: str, where: str) -> Received:
    decoded = parse_data_url(value)
    if decoded is None:
        raise PartError(
            f"Invalid '{where}': expected a base64-encoded data URL (data:application/pdf;base64,...).", where
        )
    media_type, data = decoded
    if media_type != PDF:
        raise PartError(f"Invalid file type '{media_type}' in '{where}': expected {PDF}.", where)
    return Received(media_type, data)


def chat_received(messages: Any, *, zai: bool = False) -> list[Received]:
    """The images and files of a Chat Completions ``messages`` list, checked (module docstring)."""
    kinds = ("text", "image_url") if zai else ("text", "image_url", "file")
    received: list[Received] = []
    for m, message in enumerate(messages if isinstance(messages, list) else []):
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, list):
            continue
        role = message.get("role")
        allowed = (*kinds, "refusal") if role == "assistant" else kinds
        for p, part in enumerate(content):
            where = f"messages[{m}].content[{p}]"
            if not isinstance(part, dict):
                raise PartError(
                    f"Invalid type for '{where}': expected an object, but got {_kind(part)} instead.",
                    where,
                    "invalid_type",
                )
            kind = part.get("type")
            if kind not in allowed:
                raise PartError(
                    f"Invalid value: '{kind}'. Supported values are: {_values(allowed)}.", f"{where}.type"
                )
            if kind in ("text", "refusal"):
                _string(part, kind, where)
                continue
            if role != "user":
                what = "Image URLs" if kind == "image_url" else "Files"
                raise PartError(
                    f"{what} are only allowed for messages with role 'user', but this message with role "
                    f"'{role}' contains one.",
                    where,
                )
            received.append(_chat_image(part, where, zai) if kind == "image_url" else _chat_file(part, where))
    return received


def _chat_image(part: dict[str, Any], where: str, zai: bool) -> Received:
    _only(part, ("type", "image_url"), where)
    image = part.get("image_url")
    if not isinstance(image, dict):
        raise PartError(
            f"Invalid type for '{where}.image_url': expected an object, but got {_kind(image)} instead.",
            f"{where}.image_url",
            "invalid_type",
        )
    _only(image, ("url", "detail"), f"{where}.image_url")
    _detail(image, f"{where}.image_url", required=False)
    return _image(_string(image, "url", f"{where}.image_url"), f"{where}.image_url.url", bare=zai)


def _chat_file(part: dict[str, Any], where: str) -> Received:
    _only(part, ("type", "file"), where)
    file = part.get("file")
    if not isinstance(file, dict):
        raise PartError(
            f"Invalid type for '{where}.file': expected an object, but got {_kind(file)} instead.",
            f"{where}.file",
            "invalid_type",
        )
    _only(file, ("filename", "file_data", "file_id"), f"{where}.file")
    if "file_id" in file:
        return Received(file_id=_string(file, "file_id", f"{where}.file"))
    if "file_data" not in file:
        raise PartError(
            f"Missing required parameter: '{where}.file.file_data' (or file_id).",
            f"{where}.file.file_data",
            "missing_required_parameter",
        )
    if not _string(file, "filename", f"{where}.file"):
        raise PartError(f"Invalid '{where}.file.filename': empty string.", f"{where}.file.filename")
    return _pdf_data(_string(file, "file_data", f"{where}.file"), f"{where}.file.file_data")


def responses_received(items: Any) -> list[Received]:
    """The images and files of a Responses ``input`` list, checked (module docstring)."""
    received: list[Received] = []
    for i, item in enumerate(items if isinstance(items, list) else []):
        if not isinstance(item, dict) or item.get("type", "message") != "message":
            continue
        content = item.get("content")
        if not isinstance(content, list):
            continue
        role = item.get("role")
        allowed = (
            ("output_text", "refusal") if role == "assistant" else ("input_text", "input_image", "input_file")
        )
        for p, part in enumerate(content):
            where = f"input[{i}].content[{p}]"
            if not isinstance(part, dict):
                raise PartError(
                    f"Invalid type for '{where}': expected an object, but got {_kind(part)} instead.",
                    where,
                    "invalid_type",
                )
            kind = part.get("type")
            if kind not in allowed:
                raise PartError(
                    f"Invalid value: '{kind}'. Supported values are: {_values(allowed)}.", f"{where}.type"
                )
            if kind in ("input_text", "output_text"):
                _string(part, "text", where)
            elif kind == "refusal":
                _string(part, "refusal", where)
            elif role != "user":
                raise PartError(
                    f"Images and files are only allowed in 'user' messages, not in a '{role}' message.", where
                )
            elif kind == "input_image":
                received.append(_input_image(part, where))
            else:
                received.append(_input_file(part, where))
    return received


def _one_of(part: dict[str, Any], keys: tuple[str, ...], where: str) -> str:
    given = [key for key in keys if key in part]
    if len(given) != 1:
        names = " or ".join(f"'{where}.{key}'" for key in keys)
        raise PartError(f"Exactly one of {names} must be given, not {len(given)}.", where)
    return given[0]


def _input_image(part: dict[str, Any], where: str) -> Received:
    _only(part, ("type", "image_url", "file_id", "detail"), where)
    _detail(part, where, required=True)
    if _one_of(part, ("image_url", "file_id"), where) == "file_id":
        return Received(file_id=_string(part, "file_id", where))
    return _image(_string(part, "image_url", where), f"{where}.image_url")


def _input_file(part: dict[str, Any], where: str) -> Received:
    _only(part, ("type", "filename", "file_data", "file_url", "file_id", "detail"), where)
    _detail(part, where, required=False)
    given = _one_of(part, ("file_data", "file_url", "file_id"), where)
    if given == "file_id":
        return Received(file_id=_string(part, "file_id", where))
    if given == "file_url":
        url = _string(part, "file_url", where)
        if not remote(url):
            raise PartError(f"Invalid '{where}.file_url': expected an http(s) URL.", f"{where}.file_url")
        return Received(url=url)
    if not part.get("filename"):
        raise PartError(
            f"Missing required parameter: '{where}.filename' (a file given as file_data needs its name).",
            f"{where}.filename",
            "missing_required_parameter",
        )
    _string(part, "filename", where)
    return _pdf_data(_string(part, "file_data", where), f"{where}.file_data")
