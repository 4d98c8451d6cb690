"""JSON schemas become grammars that make even a random-weight model write valid JSON."""

from __future__ import annotations

import ctypes
import json
import threading
import time

import jsonschema
import llama_cpp
import numpy as np
import pytest

from app.engine.serving.jobs import Finished, Piece, SequenceFailed, SequenceJob
from app.engine.serving.pool import ModelPool
from app.engine.structured.grammar_sampling import GrammarError, GrammarSampler
from app.engine.structured.schema_grammar import (
    JSON_OBJECT_GRAMMAR,
    InvalidSchema,
    SchemaTooComplex,
    UnsupportedSchema,
    schema_to_grammar,
)
from app.engine.types import ChatMessage, LoadSettings, Sampling

SCHEMAS = {
    "enum": {"type": "object", "properties": {
        "color": {"type": "string", "enum": ["red", "green", "blue"]},
        "size": {"enum": [1, 2, "large", None]}}, "required": ["color", "size"]},
    "nested": {"type": "object", "properties": {
        "person": {"type": "object", "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 12},
            "address": {"type": "object", "properties": {
                "city": {"type": "string", "maxLength": 10},
                "zip": {"type": "string", "pattern": "^[0-9]{5}$"}},
                "required": ["city", "zip"], "additionalProperties": False}},
            "required": ["name", "address"]}}, "required": ["person"]},
    "array_limits": {"type": "object", "properties": {
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 5},
                 "minItems": 2, "maxItems": 4}}, "required": ["tags"]},
    "bounded_numbers": {"type": "object", "properties": {
        "age": {"type": "integer", "minimum": 18, "maximum": 99},
        "delta": {"type": "integer", "exclusiveMinimum": -10, "exclusiveMaximum": 10},
        "score": {"type": "number"}, "ok": {"type": "boolean"}},
        "required": ["age", "delta", "score", "ok"]},
    "optional_and_refs": {"$defs": {"item": {"type": "object", "properties": {
        "id": {"type": "integer", "minimum": 0},
        "note": {"anyOf": [{"type": "string", "maxLength": 8}, {"type": "null"}]}},
        "required": ["id"]}},
        "type": "object", "properties": {
            "items": {"type": "array", "items": {"$ref": "#/$defs/item"}, "maxItems": 3},
            "when": {"type": "string", "format": "date"},
            "either": {"anyOf": [{"type": "integer"}, {"const": "none"}]}},
        "required": ["items", "when", "either"]},
    "top_level_array": {"type": "array", "items": {"type": "object", "properties": {
        "k": {"const": "v"}, "n": {"type": "integer", "minimum": 1, "maximum": 3}},
        "required": ["k", "n"]}, "minItems": 1, "maxItems": 2},
}


@pytest.fixture(scope="module")
def model(tiny_chat_model):
    pool = ModelPool()
    try:
        yield pool.load("tiny", str(tiny_chat_model), LoadSettings(n_ctx=2048, parallel=2))
    finally:
        pool.shutdown()


def _generate(model, grammar: str | None, seed: int, max_tokens: int = 400,
              temperature: float = 1.0) -> tuple[str, object]:
    chat = model.chat_prompt([ChatMessage("user", "Answer in JSON.")])
    pieces: list[str] = []
    done = threading.Event()
    end: list[object] = []

    def on_event(event) -> None:
        if isinstance(event, Piece):
            pieces.append(event.text)
        else:
            end.append(event)
            done.set()

    job = SequenceJob(chat.tokens, Sampling(temperature=temperature, seed=seed,
                                            max_tokens=max_tokens), stop=chat.stop,
                      grammar=grammar)
    model.submit(job, on_event)
    assert done.wait(60)
    return "".join(pieces), end[0]


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_a_random_model_writes_json_that_validates_against_the_schema(model, name):
    schema = SCHEMAS[name]
    grammar = schema_to_grammar(schema)
    for seed in range(3):
        text, end = _generate(model, grammar, seed)
        assert isinstance(end, Finished) and end.reason == "eos", (text, end)
        jsonschema.validate(json.loads(text), schema)


def test_without_the_grammar_the_same_model_writes_no_json(model):
    text, _ = _generate(model, None, seed=0, max_tokens=40)
    with pytest.raises(ValueError):
        json.loads(text)


def test_json_object_mode_gives_an_object(model):
    for seed in range(2):
        text, end = _generate(model, JSON_OBJECT_GRAMMAR, seed, max_tokens=300)
        if isinstance(end, Finished) and end.reason == "eos":
            assert isinstance(json.loads(text), dict)
        else:  # a random model may nest deep: cut by max_tokens, yet a prefix of an object
            assert text.lstrip().startswith("{")


def test_a_reply_cut_by_max_tokens_ends_with_length_not_an_error(model):
    text, end = _generate(model, schema_to_grammar(SCHEMAS["nested"]), seed=1, max_tokens=5)
    assert isinstance(end, Finished) and end.reason == "length"
    assert text.lstrip().startswith("{")


def test_rejected_first_choices_are_resampled_from_the_grammar(model, monkeypatch):
    """Most first choices of a random model break the grammar: each is refused and the chain
    samples again from the tokens the grammar allows; the sampler is freed at the end."""
    from app.engine.serving import decode_loop

    made: list[GrammarSampler] = []

    class Recorded(GrammarSampler):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(decode_loop, "GrammarSampler", Recorded)
    schema = SCHEMAS["array_limits"]
    text, end = _generate(model, schema_to_grammar(schema), seed=5)
    jsonschema.validate(json.loads(text), schema)
    assert end.stats.generated_tokens > 5
    assert made[0].rejections > end.stats.generated_tokens // 2
    assert made[0]._grammar is None  # freed when the sequence ended


def test_a_grammar_llama_cpp_refuses_fails_that_sequence_only(model):
    text, end = _generate(model, 'root ::= undefined-rule "x"', seed=0)
    assert isinstance(end, SequenceFailed) and "grammar" in end.message
    text, end = _generate(model, None, seed=0, max_tokens=3)  # the loop still serves
    assert isinstance(end, Finished)


def test_a_grammar_no_token_can_follow_fails_that_sequence_clearly(model):
    # The tiny vocabulary spells an emoji only with raw bytes, which never go to a grammar.
    text, end = _generate(model, 'root ::= "\\U0001F600"', seed=0)
    assert isinstance(end, SequenceFailed) and "No token" in end.message


def test_llama_cpp_refusing_a_grammar_is_a_grammar_error(model):
    with pytest.raises(GrammarError):
        GrammarSampler(model._runtime._vocab, model.vocab_size(), "root ::= [")


UNSUPPORTED = [
    ({"type": "object", "properties": {"age": {"type": "integer", "multipleOf": 5}}},
     ["properties.age.multipleOf"]),
    ({"type": "object", "properties": {"x": {"not": {"type": "string"}}}},
     ["properties.x.not"]),
    ({"type": "object", "if": {"required": ["a"]}, "then": {"required": ["b"]},
      "else": {}, "properties": {"a": {"type": "string"}}}, ["if", "then", "else"]),
    ({"type": "object", "properties": {"a": {"type": "string"}},
      "dependentSchemas": {"a": {"required": ["b"]}}}, ["dependentSchemas"]),
    ({"type": "array", "items": {"type": "integer"}, "uniqueItems": True,
      "contains": {"const": 3}}, ["uniqueItems", "contains"]),
    ({"type": "object", "patternProperties": {"^x": {"type": "string"}},
      "properties": {"a": {"type": "string", "format": "email"}}},
     ["properties.a.format", "patternProperties"]),
    ({"$ref": "https://example.com/schema.json"}, ["$ref"]),
    ({"oneOf": [{"type": "string"}, {"type": "integer"}]}, ["oneOf"]),
    ({"type": "object", "properties": {"p": {"type": "number", "minimum": 0.5}}},
     ["properties.p.minimum"]),
    ({"type": "object", "properties": {"z": {"type": "string", "pattern": "^\\d+$"}}},
     ["properties.z.pattern"]),
    ({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["b"]},
     ["required"]),
]


@pytest.mark.parametrize(("schema", "features"), UNSUPPORTED)
def test_keywords_the_grammar_cannot_honour_are_listed_not_dropped(schema, features):
    with pytest.raises(UnsupportedSchema) as caught:
        schema_to_grammar(schema)
    assert caught.value.features == features
    for feature in features:
        assert feature in str(caught.value)


def _deep(levels: int) -> dict:
    schema: dict = {"type": "string"}
    for _ in range(levels):
        schema = {"type": "object", "properties": {"a": schema}, "required": ["a"]}
    return schema


HOSTILE = [
    _deep(400),
    {"type": "object", "properties": {f"p{i}": {"type": "string"} for i in range(5000)}},
    {"type": "array", "items": {"type": "string"}, "maxItems": 10**9},
    {"type": "string", "maxLength": 10**7},
    {"type": "string", "pattern": "^(a{1,100000})$"},
    {"type": "object", "properties": {"d": {"description": "x" * 100_000}}},
    {"type": "object", "properties": {f"p{i}": {"type": "integer"} for i in range(1000)}},
    {"enum": list(range(3000))},
]


@pytest.mark.parametrize("schema", HOSTILE)
def test_hostile_schemas_are_refused_quickly(schema):
    started = time.perf_counter()
    with pytest.raises(SchemaTooComplex):
        schema_to_grammar(schema)
    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize("schema", [[1, 2], {"type": "nonsense"}, {"$ref": "#/$defs/none"},
                                    {"type": "integer", "minimum": 5, "maximum": 1}])
def test_malformed_schemas_are_invalid(schema):
    with pytest.raises(InvalidSchema):
        schema_to_grammar(schema)


def test_annotations_and_titles_do_not_get_in_the_way():
    schema = {"title": "T", "description": "d", "$schema":
              "https://json-schema.org/draft/2020-12/schema", "type": "object",
              "properties": {"title": {"type": "string", "description": "a title"},
                             "any": {"description": "anything"}}, "required": ["title"]}
    grammar = schema_to_grammar(schema)
    assert '"\\"title\\""' in grammar


def _matches(vocab, n_vocab: int, grammar: str, text: str, tokenize, eos: int) -> bool:
    """Whether llama.cpp's grammar takes exactly ``text``, fed one character token at a time."""
    sampler = GrammarSampler(vocab, n_vocab, grammar)
    try:
        for char in text:
            token = tokenize(char)
            if not sampler._allows(token):
                return False
            llama_cpp.llama_sampler_accept(sampler._grammar, token)
        return sampler._allows(eos)
    finally:
        sampler.close()


@pytest.mark.parametrize(("low", "high"), [(0, 120), (-15, 7), (18, 99), (5, None),
                                           (None, -3), (100, 1000), (-250, -40)])
def test_integer_bounds_take_exactly_the_integers_in_range(model, low, high):
    from app.engine.structured.int_range import int_range_rule

    runtime = model._runtime
    vocab, n_vocab = runtime._vocab, model.vocab_size()
    pieces = {runtime._token_text(t): t for t in range(n_vocab)}
    singles = {char: pieces[char] for char in "-0123456789"}  # the byte tokens
    eos = 2  # the tiny vocabulary's </s>
    grammar = f"root ::= {int_range_rule(low, high)}"
    start = (low if low is not None else high) - 30
    stop = (high if high is not None else low) + 30
    for value in range(start, stop + 1):
        inside = (low is None or value >= low) and (high is None or value <= high)
        taken = _matches(vocab, n_vocab, grammar, str(value), singles.__getitem__, eos)
        assert taken == inside, (value, low, high)
    assert not _matches(vocab, n_vocab, grammar, "007", singles.__getitem__, eos) or low is None


def test_fast_resampling_draws_exactly_what_a_whole_vocabulary_scan_draws(tiny_chat_model,
                                                                           monkeypatch):
    """After a refused pick, checking only likely tokens or first-character groups must give
    the token that grammar-first sampling over the whole vocabulary gives, same seed."""
    from app.engine.inference.runtime import Runtime, token_piece
    from app.engine.inference.sampler_chain import make_chain
    from app.engine.structured import grammar_sampling, vocab_index

    runtime = Runtime(str(tiny_chat_model), LoadSettings(n_ctx=256))
    try:
        ctx, vocab = runtime._ctx, runtime._vocab
        n_vocab = llama_cpp.llama_vocab_n_tokens(vocab)
        prompt = runtime.tokenize("hello world", add_special=True, parse_special=False)
        tokens = (llama_cpp.llama_token * len(prompt))(*prompt)
        assert llama_cpp.llama_decode(ctx, llama_cpp.llama_batch_get_one(tokens, len(prompt))) == 0
        row = llama_cpp.llama_get_logits_ith(ctx, -1)
        logits = np.ctypeslib.as_array(ctypes.cast(row, ctypes.POINTER(ctypes.c_float)),
                                       shape=(n_vocab,))
        index = vocab_index.build(vocab, n_vocab)
        buf = ctypes.create_string_buffer(64)
        pieces = {token_piece(vocab, t, buf).decode("utf-8", "replace"): t
                  for t in reversed(range(n_vocab))}  # the lowest id (a byte token) wins
        grammar = schema_to_grammar(SCHEMAS["nested"])
        monkeypatch.setattr(grammar_sampling, "CANDIDATES", 64)  # the tiny vocabulary is small
        checked = 0
        for prefix in ['', '{', '{"person"', '{"person": {"name": "a', '{"person": {"name": "ab"',
                       '{"person":{"name":"x","address":{"city":"y","zip":"12']:
            for seed in range(6):
                picks = []
                for top_k in (0, 5):
                    for fast in (False, True):
                        sampler = GrammarSampler(vocab, n_vocab, grammar, index, top_k=top_k)
                        for char in prefix:
                            assert sampler._allows(pieces[char])
                            llama_cpp.llama_sampler_accept(sampler._grammar, pieces[char])
                        chain = make_chain(Sampling(temperature=1.0, top_k=top_k, seed=seed),
                                           n_vocab)
                        if fast:
                            picks.append(sampler._resample(chain, ctx, -1))
                        else:  # the grammar over every token, then the chain
                            picks.append(sampler._apply_all(chain, sampler._ids, logits))
                        llama_cpp.llama_sampler_free(chain)
                        sampler.close()
                assert picks[0] == picks[1] and picks[2] == picks[3], (prefix, seed, picks)
                checked += 1
        assert checked == 36
    finally:
        runtime.close()
