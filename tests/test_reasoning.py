"""Splitting a reasoning model's <think> text from its answer, complete and while streaming."""

from __future__ import annotations

from app.engine.inference.reasoning import ThinkingSplit, split_thinking


def test_plain_text_has_no_thinking() -> None:
    assert split_thinking("Just an answer.") == ThinkingSplit("", "Just an answer.", False)


def test_closed_block_is_split_from_the_answer() -> None:
    split = split_thinking("<think>\nAdd 2 and 2.\n</think>\n\nThe answer is 4.")
    assert split == ThinkingSplit("Add 2 and 2.", "The answer is 4.", False)


def test_unclosed_block_while_streaming_is_open_and_has_no_answer() -> None:
    split = split_thinking("<think>Let me count the letters")
    assert split == ThinkingSplit("Let me count the letters", "", True)


def test_partial_closing_tag_at_the_end_is_not_shown() -> None:
    split = split_thinking("<think>Almost done</thi")
    assert split.thinking == "Almost done" and split.thinking_open


def test_opening_tag_alone_is_an_open_empty_block() -> None:
    assert split_thinking("<think>") == ThinkingSplit("", "", True)


def test_several_blocks_are_joined_and_text_between_is_answer() -> None:
    text = "Intro. <think>first</think>Middle. <think>second</think> End."
    split = split_thinking(text)
    assert split.thinking == "first\n\nsecond"
    assert split.answer == "Intro. Middle.  End."
    assert not split.thinking_open


def test_text_before_the_block_stays_in_the_answer() -> None:
    split = split_thinking("Sure. <think>plan</think>Done")
    assert split.answer == "Sure. Done" and split.thinking == "plan"


def test_closing_tag_without_opening_means_the_template_opened_it() -> None:
    split = split_thinking("I should greet them.</think>Hello!")
    assert split == ThinkingSplit("I should greet them.", "Hello!", False)


def test_second_block_open_after_a_closed_one() -> None:
    split = split_thinking("<think>a</think>Answer <think>b")
    assert split == ThinkingSplit("a\n\nb", "Answer", True)


def test_reply_that_starts_inside_the_block_streams_as_thinking() -> None:
    from app.engine.inference.reasoning import split_thinking as split

    assert split("Okay, the user wants", starts_in_thinking=True) == ThinkingSplit(
        "Okay, the user wants", "", True)
    assert split("Let me add.\n</thi", starts_in_thinking=True) == ThinkingSplit(
        "Let me add.", "", True)
    assert split("Add 2 and 2.\n</think>\n\nIt is 4.", starts_in_thinking=True) == ThinkingSplit(
        "Add 2 and 2.", "It is 4.", False)
    # A model that writes the tag again anyway is not counted twice.
    assert split("<think>plan</think>Done", starts_in_thinking=True) == ThinkingSplit(
        "plan", "Done", False)
    assert split("", starts_in_thinking=True) == ThinkingSplit("", "", True)


def test_prompt_opens_thinking() -> None:
    from app.engine.inference.reasoning import prompt_opens_thinking

    assert prompt_opens_thinking("<｜User｜>hi<｜Assistant｜><think>\n")
    assert not prompt_opens_thinking("<|im_start|>assistant\n")
    assert not prompt_opens_thinking("<think>old</think>\n<|im_start|>assistant\n")


def test_rendered_prompt_knows_when_the_template_opens_the_block() -> None:
    from app.engine.inference.prompt_format import PromptFormatter
    from app.engine.types import ChatMessage

    r1 = ("{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}{% endfor %}"
          "{% if add_generation_prompt %}<|assistant|><think>\n{% endif %}")
    user = [ChatMessage("user", "hi")]
    assert PromptFormatter(r1).render(user).opens_thinking
    assert not PromptFormatter(None).render([ChatMessage("user", "<think>")]).opens_thinking
