import pytest

from conversations.artifacts import CodeBlock, FenceScanner, extract_code_blocks, parse_info_string

TEXT = "Intro\n```python app.py\nprint(1)\n```\nmiddle\n~~~\nplain\n~~~\n````md\n```\nnested\n```\n````\nend"


def test_blocks_with_language_filename_and_position():
    blocks = extract_code_blocks(TEXT)
    assert blocks == [
        CodeBlock(0, "python", "app.py", "print(1)\n"),
        CodeBlock(1, "", "", "plain\n"),
        CodeBlock(2, "md", "", "```\nnested\n```\n"),
    ]


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 13])
def test_any_chunking_gives_the_same_blocks(size):
    scanner = FenceScanner()
    blocks = []
    for i in range(0, len(TEXT), size):
        blocks += scanner.feed(TEXT[i : i + size])
    blocks += scanner.finish()
    assert blocks == extract_code_blocks(TEXT)


def test_a_block_is_returned_as_soon_as_its_closing_fence_line_ends():
    scanner = FenceScanner()
    assert scanner.feed("```js\nlet a\n") == []
    assert scanner.feed("```") == []
    assert scanner.feed("\n") == [CodeBlock(0, "js", "", "let a\n")]


def test_unclosed_block_at_the_end_counts_when_finished():
    assert extract_code_blocks("```sh\necho hi") == [CodeBlock(0, "sh", "", "echo hi\n")]


@pytest.mark.parametrize(
    ("info", "expected"),
    [
        ("python", ("python", "")),
        ("python:src/app.py", ("python", "src/app.py")),
        ("python filename=app.py", ("python", "app.py")),
        ('js title="x.js"', ("js", "x.js")),
        ("main.go", ("go", "main.go")),
        ("", ("", "")),
    ],
)
def test_info_string_forms(info, expected):
    assert parse_info_string(info) == expected
