"""Images through the API: OpenAI ``image_url`` parts with data URIs, with the official client,
against the real server and a tiny vision model loaded just in time with its projector."""

from __future__ import annotations

import base64

import httpx
import openai
import pytest
from image_samples import noise_png, png_declaring

from app.engine.gguf.info import read_model_info
from app.services.projectors import choose_projector

VISION_ID = "tiny-vl-chat-f16"


def _data_uri(data: bytes, media_type: str = "image/png") -> str:
    return f"data:{media_type};base64,{base64.b64encode(data).decode()}"


def _ask(url: str, text: str = "What is in this picture?") -> list[dict]:
    return [{"role": "user", "content": [{"type": "text", "text": text},
                                         {"type": "image_url", "image_url": {"url": url}}]}]


@pytest.fixture
def vision_server(make_hearth_server, hearth_store, tiny_vision_model):
    """The server with the tiny chat model loaded and the tiny vision model in the library
    (its projector beside it), not loaded: a request loads it just in time."""
    hearth_store.add_model_file(read_model_info(tiny_vision_model.model))
    return make_hearth_server()


def test_an_image_streams_a_reply_with_usage_counting_the_image_tokens(vision_server,
                                                                       tiny_vision_model):
    stream = vision_server.client.chat.completions.create(
        model=VISION_ID, messages=_ask(_data_uri(noise_png())), max_tokens=6, seed=1,
        stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    usage = chunks[-1].usage
    assert text and usage.completion_tokens > 0
    details = usage.prompt_tokens_details.model_dump()
    assert details["image_tokens"] == tiny_vision_model.image_tokens == 16
    assert usage.prompt_tokens > 16  # the text's tokens beside the image's
    loaded = vision_server.pool.get(VISION_ID)
    assert loaded.projector_path == str(tiny_vision_model.mmproj)

    # Not streamed, the same usage; a different image gives a different prompt, not a cache hit.
    reply = vision_server.client.chat.completions.create(
        model=VISION_ID, messages=_ask(_data_uri(noise_png())), max_tokens=4)
    assert reply.usage.prompt_tokens_details.model_dump()["image_tokens"] == 16
    assert reply.choices[0].message.content


@pytest.mark.parametrize("url,reason", [
    (_data_uri(noise_png()[:300]), "truncated or damaged"),
    (_data_uri(b"this is a text file, not a picture"), "not an image Hearth can read"),
    ("data:image/png;base64,", "empty (0 bytes)"),
    (_data_uri(png_declaring(100_000, 100_000)), "too many pixels"),
    (_data_uri(png_declaring(7000, 7000)), "7000 × 7000 pixels"),
    (_data_uri(noise_png(), "application/pdf"), "'application/pdf' are not read"),
    ("data:image/png;base64,@@not base64@@", "not valid base64"),
    ("data:image/png,rawbytes", "base64-encoded"),
])
def test_each_bad_image_is_a_400_with_its_reason(vision_server, url, reason):
    with pytest.raises(openai.BadRequestError) as info:
        vision_server.client.chat.completions.create(model=VISION_ID, messages=_ask(url),
                                                     max_tokens=2)
    error = info.value.body
    assert reason in error["message"]
    assert error["param"] == "messages[0].content[1]" and error["code"] == "invalid_image"
    # Refused before anything loads: a bad image costs no model load.
    assert vision_server.pool.get(VISION_ID) is None


def test_an_image_at_a_web_address_is_refused_not_fetched(vision_server):
    with pytest.raises(openai.BadRequestError) as info:
        vision_server.client.chat.completions.create(
            model=VISION_ID, messages=_ask("https://example.com/cat.png"), max_tokens=2)
    assert info.value.body["code"] == "image_url_not_supported"
    assert "not fetched" in info.value.body["message"]
    assert "data:image/png;base64" in info.value.body["message"]


def test_a_model_without_a_projector_says_it_cannot_read_images_and_names_one_that_can(
        vision_server):
    with pytest.raises(openai.BadRequestError) as info:
        vision_server.client.chat.completions.create(
            model=vision_server.model, messages=_ask(_data_uri(noise_png())), max_tokens=2)
    message = info.value.body["message"]
    assert info.value.body["code"] == "model_not_vision"
    assert f"'{vision_server.model}' cannot read images" in message
    assert VISION_ID in message


def test_a_user_unpicking_the_projector_makes_the_model_text_only(vision_server, hearth_store,
                                                                  tiny_vision_model):
    choose_projector(hearth_store, tiny_vision_model.model, None)
    with pytest.raises(openai.BadRequestError) as info:
        vision_server.client.chat.completions.create(
            model=VISION_ID, messages=_ask(_data_uri(noise_png())), max_tokens=2)
    assert info.value.body["code"] == "model_not_vision"
    assert vision_server.pool.get(VISION_ID).projector_path is None
    # Text still works with it.
    reply = vision_server.client.chat.completions.create(
        model=VISION_ID, messages=[{"role": "user", "content": "hi"}], max_tokens=2)
    assert reply.usage.prompt_tokens_details.model_dump()["image_tokens"] == 0


def test_the_model_lists_mark_vision_models(vision_server):
    listed = {m.id: m.model_dump() for m in vision_server.client.models.list().data}
    assert listed[VISION_ID]["capabilities"] == ["vision"]
    assert listed[vision_server.model]["capabilities"] == []
    v0 = {m["id"]: m for m in
          httpx.get(f"{vision_server.base_url}/api/v0/models").json()["data"]}
    assert v0[VISION_ID]["type"] == "vlm" and v0[VISION_ID]["capabilities"] == ["vision"]
    assert v0[vision_server.model]["type"] == "llm"
    one = httpx.get(f"{vision_server.base_url}/api/v0/models/{VISION_ID}").json()
    assert one == v0[VISION_ID]
    assert vision_server.client.models.retrieve(VISION_ID).model_dump()["capabilities"] == [
        "vision"]


def test_images_that_overflow_the_context_are_refused_with_the_numbers(vision_server,
                                                                       hearth_store,
                                                                       tiny_vision_model):
    from app.services.load_settings import settings_key

    hearth_store.set_setting(settings_key(str(tiny_vision_model.model)), {"n_ctx": 256})
    image = {"type": "image_url", "image_url": {"url": _data_uri(noise_png())}}
    messages = [{"role": "user", "content": [{"type": "text", "text": "Compare."},
                                             *[image] * 20]}]
    with pytest.raises(openai.BadRequestError) as info:
        vision_server.client.chat.completions.create(model=VISION_ID, messages=messages,
                                                     max_tokens=2)
    n_ctx = vision_server.pool.get(VISION_ID).n_ctx
    assert n_ctx < 20 * 16
    assert info.value.body["code"] == "context_length_exceeded"
    assert "320 of them for 20 images" in info.value.body["message"]
    assert f"holds {n_ctx}" in info.value.body["message"]


def test_one_requests_images_share_a_pixel_budget(monkeypatch):
    from app.server import chat_prompt
    from app.server.errors import ApiError
    from app.server.schemas import ChatMessageIn

    monkeypatch.setattr(chat_prompt, "MAX_REQUEST_PIXELS", 2 * 64 * 64)
    image = {"type": "image_url", "image_url": {"url": _data_uri(noise_png())}}
    two = [ChatMessageIn(role="user", content=[image, image])]
    assert [len(t.images) for t in chat_prompt.chat_messages(two)] == [2]
    three = [ChatMessageIn(role="user", content=[image, image, image])]
    with pytest.raises(ApiError) as info:
        chat_prompt.chat_messages(three)
    assert info.value.param == "messages[0].content[2]"
    assert "at most 0.008192 megapixels together" in info.value.message
    assert "they hold 0.0" in info.value.message
