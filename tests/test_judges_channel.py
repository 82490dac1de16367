"""channel_messages: each check fails on a bad split and passes on a good one."""

from __future__ import annotations

import pytest
from _judges_helpers import agent, convo, judge, run

from evalkit.core.errors import JudgeSpecError
from evalkit.core.transcript import AgentTurn

MAX = 40  # small limits keep the synthetic replies readable


def sent(content: str, messages: object) -> AgentTurn:
    return agent(content, metadata={"messages": messages})


def check(content: str, messages: object, spec: dict | None = None, **fields):
    return run({"channel_messages": {"max_chars": MAX, **(spec or {})}},
               convo(("hi", sent(content, messages)), **fields))


P1 = "First paragraph here."  # 21 characters
P2 = "Second one is longer than that."  # 31 characters
REPLY = f"{P1}\n\n{P2}"


def test_a_good_split_passes():
    v = check(REPLY, [P1, P2])
    assert v.passed is True, v.reason
    assert v.reason == "turn 1 sent its reply whole in 2 messages of at most 40 characters, with no needless split"


def test_a_reply_within_the_limit_passes_as_one_message():
    assert check("Short reply.", ["Short reply."]).passed is True


def test_an_empty_message_fails():
    v = check(REPLY, [P1, "  ", P2])
    assert v.passed is False and "message 2 of 3 is empty" in v.reason and v.turn == 1


def test_a_message_over_the_limit_fails():
    v = check(REPLY, [REPLY])
    assert v.passed is False and "message 1 of 1 has 54 characters (max 40)" in v.reason
    assert check(REPLY, [REPLY], {"max_chars": 54}).passed is True


@pytest.mark.parametrize(
    ("messages", "words"),
    [
        ([P1], "lose the reply's end: 'Second one is longer than that…'"),
        ([P1, P2, "Bye."], "add 'Bye.' after the reply's end"),
        ([P1, "Hello!", P2], "add 'Hello!'"),
        ([P1, P2.replace("longer", "shorter")], "change 'longer' to 'shorter'"),
        ([P2, P1], "reorder the reply's text"),
        ([], "lose the reply's end: 'First paragraph here. Second o…'"),
    ],
)
def test_text_lost_added_changed_or_reordered_fails(messages, words):
    v = check(REPLY, messages)
    assert v.passed is False and f"the messages {words}" in v.reason, v.reason


def test_whitespace_is_not_compared():
    # A splitter may turn the space between sentences into a blank line, or trim edges.
    reply = "One sentence here. Another sentence follows it. And a third one ends it."
    messages = ["One sentence here.\n\nAnother sentence follows it.", "  And a third one ends it.\n"]
    assert check(reply, messages, {"max_chars": 50}).passed is True


def test_needless_split_fails_as_fragmented_unless_allowed():
    reply = "Short one.\n\nShort two."
    v = check(reply, ["Short one.", "Short two."])
    assert v.passed is False and "messages 1 and 2 (10 + 10 characters) fit in one message of 40 (fragmented)" in v.reason
    assert check(reply, ["Short one.", "Short two."], {"compact": False}).passed is True
    # Exactly at the limit with the blank line between them: still one message's worth.
    a, b = "a" * 19, "b" * 19
    v = check(f"{a}\n\n{b}", [a, b])
    assert v.passed is False and "fragmented" in v.reason
    b = "b" * 20  # one more: 41 together, so two messages are needed
    assert check(f"{a}\n\n{b}", [a, b]).passed is True


def test_a_word_cut_between_messages_fails_unless_longer_than_the_limit():
    reply = "a" * 30 + " bbbbbbbbbbbb"  # 43 characters, the second word 12
    v = check(reply, ["a" * 30 + " bbbbbb", "bbbbbb"])
    assert v.passed is False
    assert "messages 1 and 2 split the word 'bbbbbbbbbbbb' (12 characters), which fits in one message" in v.reason
    assert check(reply, ["a" * 30, "bbbbbbbbbbbb"]).passed is True
    giant = "x" * 90  # alone longer than the limit: it must be cut
    assert check(giant, ["x" * 40, "x" * 40, "x" * 10]).passed is True
    # A cut that loses the word's end is lost text, not a cut.
    v = check(giant, ["x" * 40, "x" * 40])
    assert v.passed is False and "the messages lose the reply's end: 'xxxxxxxxxx'" in v.reason


def test_a_sentence_split_across_messages_fails_when_it_fits():
    reply = "Tiny. This sentence has exactly forty chars. Tail."
    v = check(reply, ["Tiny. This sentence has exactly", "forty chars. Tail."])
    assert v.passed is False
    assert "split the sentence 'This sentence has exactly fort…' (38 characters)" in v.reason
    assert check(reply, ["Tiny.", "This sentence has exactly forty chars.", "Tail."], {"compact": False}).passed
    # keep_whole without sentences accepts a split at a word boundary.
    assert check(reply, ["Tiny. This sentence has exactly", "forty chars. Tail."],
                 {"keep_whole": ["word"]}).passed is True


def test_a_line_counts_as_a_sentence():
    reply = "- first item of the list\n- second item here"
    v = check(reply, ["- first item of the", "list\n- second item here"], {"max_chars": 30})
    assert v.passed is False and "split the sentence '- first item of the list'" in v.reason
    assert check(reply, ["- first item of the list", "- second item here"], {"max_chars": 30}).passed


def test_a_paragraph_split_across_messages_fails_when_it_fits():
    p1, p2, p3 = "Intro line.", "Two short. Sentences here.", "End."
    reply = f"{p1}\n\n{p2}\n\n{p3}"
    # Packing the first sentence of paragraph 2 with paragraph 1 splits paragraph 2.
    v = check(reply, [f"{p1}\n\nTwo short.", "Sentences here.\n\nEnd."], {"max_chars": 32})
    assert v.passed is False
    assert "messages 1 and 2 split the paragraph 'Two short. Sentences here.' (26 characters)" in v.reason
    assert check(reply, [p1, f"{p2}\n\n{p3}"], {"max_chars": 32}).passed is True
    # A paragraph longer than the limit may be split between its sentences.
    long = "First sentence goes here. Second sentence goes here."
    assert check(long, ["First sentence goes here.", "Second sentence goes here."], {"max_chars": 30}).passed


def test_every_reporting_turn_is_checked_and_problems_name_their_turn():
    t = convo(("a", sent(REPLY, [P1, P2])), ("b", sent("Fine.", ["Fine."])), ("c", sent(REPLY, [P2])))
    v = run({"channel_messages": MAX}, t)
    assert v.passed is False and v.turn == 3 and "turn 3: the messages lose" in v.reason
    v = run({"channel_messages": MAX}, t, window=(1, 2))
    assert v.passed is True and v.reason.startswith("turns 1 and 2 sent their replies whole in 3 messages")


def test_turns_without_messages_are_skipped_and_never_pass():
    v = run({"channel_messages": MAX}, convo(("hi", "Hello there.")))
    assert v.passed is None and v.skipped and "metadata 'messages'" in v.skipped
    # A turn that does report them is still checked next to one that does not.
    t = convo(("hi", "Hello there."), ("more", sent(REPLY, [P1])))
    assert run({"channel_messages": MAX}, t).passed is False
    # A failed turn is not a split to judge.
    failed = agent("", metadata={"messages": [""]}, error="agent raised ValueError")
    assert run({"channel_messages": MAX}, convo(("hi", failed))).passed is None


def test_the_channel_filter_skips_other_channels():
    v = check(REPLY, [P1], {"channel": "whatsapp"}, channel="web")
    assert v.passed is None and v.skipped == "the conversation is on web, not whatsapp"
    assert check(REPLY, [P1], {"channel": "whatsapp"}, channel="whatsapp").passed is False


@pytest.mark.parametrize("messages", ["one string", [1, 2], {"a": "b"}])
def test_messages_that_are_not_a_list_of_strings_fail(messages):
    v = check(REPLY, messages)
    assert v.passed is False and "metadata 'messages' is not a list of strings" in v.reason


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        ({"channel_messages": {}}, r"^channel_messages\.max_chars: Field required"),
        ({"channel_messages": 0}, r"^channel_messages\.max_chars: Input should be greater than or equal to 1"),
        ({"channel_messages": {"max_chars": 10, "channel": "fax"}}, r"^channel_messages\.channel: Input should be"),
        ({"channel_messages": {"max_chars": 10, "keep_whole": ["chapter"]}}, r"^channel_messages\.keep_whole\.0: Input should be"),
        ({"channel_messages": {"max_char": 10}}, r"unknown argument 'max_char' .*did you mean 'max_chars'"),
    ],
)
def test_bad_arguments_are_one_line_errors(spec, error):
    with pytest.raises(JudgeSpecError, match=error):
        judge(spec)


def test_scalar_and_single_unit_forms():
    assert judge({"channel_messages": 4000}).max_chars == 4000
    assert judge({"channel_messages": {"max_chars": 9, "keep_whole": "word"}}).keep_whole == ["word"]
