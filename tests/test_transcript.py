"""The transcript of one answer: its chunks in, the outcome of each way a turn ends out."""

from conversations.artifacts import CodeBlock
from conversations.turns.transcript import Transcript
from providers.base import ChatMessage, ProviderChunk, ProviderRequest, Usage, estimate_usage

PROMPT = ProviderRequest(
    model="gpt-test",
    messages=(ChatMessage("user", "an earlier question"), ChatMessage("user", "what now?")),
    system="be brief",
)
REPORTED = Usage(12, 5, 17)


def transcript(*chunks: ProviderChunk, json_required: bool = False) -> Transcript:
    answer = Transcript(PROMPT, "openai", "gpt-test", json_required=json_required)
    for chunk in chunks:
        answer.add(chunk)
    return answer


def test_complete_answer_keeps_the_text_and_what_the_provider_reported():
    outcome = transcript(
        ProviderChunk(text="Hello, "),
        ProviderChunk(text="world."),
        ProviderChunk(usage=REPORTED, finish_reason="length", response_id="resp-1"),
    ).complete()
    assert (outcome.status, outcome.content) == ("complete", "Hello, world.")
    assert (outcome.provider, outcome.model) == ("openai", "gpt-test")
    assert (outcome.finish_reason, outcome.response_id) == ("length", "resp-1")
    assert (outcome.input_tokens, outcome.output_tokens, outcome.usage_estimated) == (12, 5, False)
    assert (outcome.error_code, outcome.error_message) == ("", "")


def test_complete_answer_without_a_finish_reason_finished_with_stop():
    assert transcript(ProviderChunk(text="done")).complete().finish_reason == "stop"


def test_empty_fields_of_later_chunks_keep_what_earlier_ones_said():
    answer = transcript(
        ProviderChunk(usage=REPORTED, finish_reason="stop", response_id="resp-1"),
        ProviderChunk(text="late text", usage=None, finish_reason=None, response_id=""),
    )
    assert (answer.usage, answer.finish_reason, answer.response_id) == (REPORTED, "stop", "resp-1")


def test_usage_not_reported_is_estimated_from_the_prompt_and_the_text():
    outcome = transcript(ProviderChunk(text="twelve chars")).complete()
    # ceil(len / 4) per text: "be brief" 2, "an earlier question" 5, "what now?" 3; the answer 3
    assert (outcome.input_tokens, outcome.output_tokens, outcome.usage_estimated) == (10, 3, True)
    estimate = estimate_usage(PROMPT, "twelve chars")
    assert (outcome.input_tokens, outcome.output_tokens) == (estimate.input_tokens, estimate.output_tokens)


def test_usage_the_provider_marked_estimated_stays_marked():
    outcome = transcript(ProviderChunk(text="hi", usage=Usage(3, 1, 4, estimated=True))).complete()
    assert (outcome.input_tokens, outcome.output_tokens, outcome.usage_estimated) == (3, 1, True)


def test_failed_answer_keeps_the_partial_text_and_the_error():
    outcome = transcript(ProviderChunk(text="half an ans"), ProviderChunk(response_id="resp-1")).failed(
        "provider_unavailable", "The upstream went away."
    )
    assert (outcome.status, outcome.content) == ("failed", "half an ans")
    assert (outcome.error_code, outcome.error_message) == ("provider_unavailable", "The upstream went away.")
    assert (outcome.finish_reason, outcome.response_id) == ("", "")  # only a complete answer chains
    assert (outcome.output_tokens, outcome.usage_estimated) == (3, True)


def test_failed_answer_keeps_usage_the_provider_reported_before_the_error():
    outcome = transcript(ProviderChunk(text="part", usage=REPORTED)).failed("internal_error", "boom")
    assert (outcome.input_tokens, outcome.output_tokens, outcome.usage_estimated) == (12, 5, False)


def test_interrupted_answer_keeps_the_partial_text_and_why():
    outcome = transcript(ProviderChunk(text="so far")).interrupted("disconnected", "The client went away.")
    assert (outcome.status, outcome.content) == ("interrupted", "so far")
    assert (outcome.error_code, outcome.error_message) == ("disconnected", "The client went away.")
    assert outcome.usage_estimated


def test_answer_with_no_text_estimates_the_prompt_only():
    outcome = transcript().interrupted("stopped", "Stopped.")
    assert (outcome.content, outcome.input_tokens, outcome.output_tokens) == ("", 10, 0)


def test_each_chunk_returns_the_code_blocks_it_closed():
    answer = Transcript(PROMPT, "openai", "gpt-test")
    assert answer.add(ProviderChunk(text="Here:\n```python app.py\nprint(1)\n")) == []
    closed = answer.add(ProviderChunk(text="```\nand more"))
    assert closed == [CodeBlock(0, "python", "app.py", "print(1)\n")]
    assert answer.complete().artifacts == (CodeBlock(0, "python", "app.py", "print(1)\n"),)


def test_end_of_text_returns_a_block_left_unclosed_and_the_outcome_keeps_it():
    answer = transcript(ProviderChunk(text="```sh\nls -la"))
    assert answer.end_of_text() == [CodeBlock(0, "sh", "", "ls -la\n")]
    assert answer.end_of_text() == []
    assert answer.complete().artifacts == (CodeBlock(0, "sh", "", "ls -la\n"),)


def test_complete_ends_the_text_when_end_of_text_was_not_called():
    assert transcript(ProviderChunk(text="```\nx")).complete().artifacts == (CodeBlock(0, "", "", "x\n"),)


def test_an_answer_cut_short_keeps_only_the_blocks_already_closed():
    answer = transcript(ProviderChunk(text="```\none\n```\n```\ntwo"))
    assert answer.interrupted("stopped", "Stopped.").artifacts == (CodeBlock(0, "", "", "one\n"),)
    assert answer.failed("provider_timeout", "Too slow.").artifacts == (CodeBlock(0, "", "", "one\n"),)


def test_json_asked_for_and_given_completes():
    outcome = transcript(
        ProviderChunk(text='{"a": '), ProviderChunk(text="1}"), json_required=True
    ).complete()
    assert (outcome.status, outcome.content) == ("complete", '{"a": 1}')


def test_json_asked_for_and_not_given_fails_keeping_the_raw_text():
    outcome = transcript(
        ProviderChunk(text="not json"),
        ProviderChunk(usage=REPORTED, response_id="resp-1"),
        json_required=True,
    ).complete()
    assert (outcome.status, outcome.content, outcome.error_code) == ("failed", "not json", "invalid_json")
    assert outcome.error_message.startswith("The model's reply is not valid JSON (")
    assert outcome.error_message.endswith("); the raw text was kept.")
    assert (outcome.finish_reason, outcome.response_id) == ("", "resp-1")  # no "stop" filled in
    assert (outcome.output_tokens, outcome.usage_estimated) == (5, False)


def test_json_not_asked_for_is_not_checked():
    assert transcript(ProviderChunk(text="not json")).complete().status == "complete"


def test_outcome_names_the_candidate_that_served_the_answer():
    answer = transcript()
    answer.served_by("gemini", "gemini-backup")
    answer.add(ProviderChunk(text="from the fallback"))
    outcome = answer.complete()
    assert (outcome.provider, outcome.model) == ("gemini", "gemini-backup")
    assert (answer.provider, answer.model) == ("gemini", "gemini-backup")


# --- tool calls (issue 30) ----------------------------------------------------------------------
def pieces(*items: tuple) -> ProviderChunk:
    from providers.base import ToolCallChunk

    return ProviderChunk(tool_calls=tuple(ToolCallChunk(*item) for item in items))


def test_tool_call_pieces_are_assembled_by_index_and_end_as_tool_calls_parts():
    answer = Transcript(PROMPT, "openai", "gpt-test", json_required=True)
    answer.add(ProviderChunk(text="Checking."))
    seen = [
        answer.add_tool_pieces(pieces((0, "call_a", "weather", "")).tool_calls),
        answer.add_tool_pieces(pieces((0, "", "", '{"city":"Ro'), (1, "", "clock", "")).tool_calls),
        answer.add_tool_pieces(pieces((0, "", "", 'me"}'), (1, "", "", "{}")).tool_calls),
    ]
    said = [(p.index, p.call_id[:5], p.name, p.started, p.arguments) for step in seen for p in step]
    assert said[:3] == [
        (0, "call_", "weather", True, ""),
        (0, "call_", "weather", False, '{"city":"Ro'),
        (1, "call_", "clock", True, ""),
    ]
    assert said[1][1] == said[0][1] and seen[0][0].call_id == "call_a"
    clock_id = seen[1][1].call_id  # the provider gave none: one was made, kept for its later pieces
    assert clock_id.startswith("call_") and len(clock_id) > 10 and seen[2][1].call_id == clock_id
    outcome = answer.complete()  # JSON was asked for: an answer of calls is complete as its calls
    assert (outcome.status, outcome.finish_reason, outcome.content) == ("complete", "tool_calls", "Checking.")
    assert outcome.parts == (
        {"type": "text", "text": "Checking."},
        {
            "type": "tool_call",
            "id": "call_a",
            "name": "weather",
            "arguments": '{"city":"Rome"}',
            "input": {"city": "Rome"},
        },
        {"type": "tool_call", "id": clock_id, "name": "clock", "arguments": "{}", "input": {}},
    )
    assert outcome.output_tokens > 0 and outcome.usage_estimated  # the calls count as output


def test_a_call_cut_mid_arguments_is_kept_incomplete_and_unparsed():
    answer = Transcript(PROMPT, "openai", "gpt-test")
    answer.add_tool_pieces(pieces((0, "call_x", "weather", '{"city": "Ro')).tool_calls)
    outcome = answer.interrupted("disconnected", "gone")
    assert outcome.status == "interrupted" and outcome.finish_reason == ""
    assert outcome.parts == (
        {
            "type": "tool_call",
            "id": "call_x",
            "name": "weather",
            "arguments": '{"city": "Ro',
            "incomplete": True,
        },
    )


def test_a_text_answer_stores_no_parts():
    assert transcript(ProviderChunk(text="Hi")).complete().parts == ()
