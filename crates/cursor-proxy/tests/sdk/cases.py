"""End-to-end cases for cursor-proxy, driven by the real `openai` and `anthropic` SDKs.

Run by examples/proxy/tests/sdk.rs as `.venv/bin/python cases.py CASE` with PROXY_URL and
PROXY_KEY in the environment. Each case asserts what the SDK itself can see and prints one JSON
line (prefixed `RESULT `) with the numbers the Rust side compares against cursor-mock's constants.
SDK retries are off (max_retries=0), so every failure the proxy lets through is visible here.
"""

import json
import os
import sys

import anthropic
import openai

URL = os.environ["PROXY_URL"]
KEY = os.environ["PROXY_KEY"]
MODEL = os.environ.get("PROXY_MODEL", "composer-2.5")
TIMEOUT = 30.0

# A 1x1 PNG.
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="

TOOL_OPENAI = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"query": {"type": "string"}}},
    },
}
TOOL_ANTHROPIC = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {"type": "object", "properties": {"query": {"type": "string"}}},
}


def oai(key=KEY):
    return openai.OpenAI(base_url=URL + "/v1", api_key=key, max_retries=0, timeout=TIMEOUT)


def ant(key=KEY):
    return anthropic.Anthropic(base_url=URL, api_key=key, max_retries=0, timeout=TIMEOUT)


def extra(obj, name):
    """A field the SDK's typed model does not declare (e.g. reasoning_content)."""
    value = getattr(obj, name, None)
    if value is None and getattr(obj, "model_extra", None):
        value = obj.model_extra.get(name)
    return value


def openai_text():
    c = oai()
    messages = [{"role": "system", "content": "be nice"}, {"role": "user", "content": "hello"}]
    # Streaming, with usage in the last chunk.
    text, reasoning, finish, usage, chunks = "", "", None, None, 0
    stream = c.chat.completions.create(
        model=MODEL, messages=messages, stream=True, stream_options={"include_usage": True}
    )
    for chunk in stream:
        chunks += 1
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            text += choice.delta.content or ""
            reasoning += extra(choice.delta, "reasoning_content") or ""
            finish = choice.finish_reason or finish
    assert finish == "stop", finish
    assert usage is not None, "include_usage set but no usage chunk"
    # Non-streaming.
    r = c.chat.completions.create(model=MODEL, messages=messages)
    assert r.choices[0].finish_reason == "stop"
    assert r.choices[0].message.content == text, (r.choices[0].message.content, text)
    # The next turn of the same conversation (resumes the saved checkpoint upstream).
    turn2 = messages + [{"role": "assistant", "content": text}, {"role": "user", "content": "and again"}]
    r2 = c.chat.completions.create(model=MODEL, messages=turn2)
    assert r2.choices[0].finish_reason == "stop" and r2.choices[0].message.content
    # An image as a data URL.
    img = c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": [
        {"type": "text", "text": "what is in this image?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64," + PNG}}]}])
    assert img.choices[0].finish_reason == "stop"
    # Streaming without include_usage has no usage chunk.
    plain = c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "again"}], stream=True)
    assert all(ch.usage is None for ch in plain)
    return {
        "stream_text": text,
        "stream_reasoning": reasoning,
        "chunks": chunks,
        "usage": usage.model_dump(),
        "nonstream_text": r.choices[0].message.content,
        "nonstream_reasoning": extra(r.choices[0].message, "reasoning_content"),
        "nonstream_usage": r.usage.model_dump(),
    }


def openai_tools():
    c = oai()
    messages = [{"role": "user", "content": "what is the weather in Paris?"}]
    stream = c.chat.completions.create(model=MODEL, messages=messages, tools=[TOOL_OPENAI], stream=True)
    calls, finish, text = {}, None, ""
    for chunk in stream:
        for choice in chunk.choices:
            text += choice.delta.content or ""
            for tc in choice.delta.tool_calls or []:
                slot = calls.setdefault(tc.index, {"id": None, "name": "", "arguments": ""})
                slot["id"] = tc.id or slot["id"]
                if tc.function is not None:
                    slot["name"] += tc.function.name or ""
                    slot["arguments"] += tc.function.arguments or ""
            finish = choice.finish_reason or finish
    assert finish == "tool_calls", finish
    assert len(calls) == 1, calls
    call = calls[0]
    assert call["name"] == "get_weather" and json.loads(call["arguments"]) == {"query": "mock"}, call
    messages.append({
        "role": "assistant",
        "content": text,
        "tool_calls": [{"id": call["id"], "type": "function",
                        "function": {"name": call["name"], "arguments": call["arguments"]}}],
    })
    messages.append({"role": "tool", "tool_call_id": call["id"], "content": "sunny, 21C"})
    r = c.chat.completions.create(model=MODEL, messages=messages, tools=[TOOL_OPENAI])
    assert r.choices[0].finish_reason == "stop", r.choices[0].finish_reason
    return {"first_text": text, "call": call, "final_text": r.choices[0].message.content,
            "usage": r.usage.model_dump()}


def anthropic_text():
    c = ant()
    kwargs = dict(model=MODEL, max_tokens=1024, system="be nice", messages=[{"role": "user", "content": "hello"}])
    events = []
    with c.messages.stream(**kwargs) as s:
        for ev in s:
            events.append(ev.type)
        final = s.get_final_message()
    assert final.stop_reason == "end_turn", final.stop_reason
    text = "".join(b.text for b in final.content if b.type == "text")
    thinking = "".join(b.thinking for b in final.content if b.type == "thinking")
    r = c.messages.create(**kwargs)
    assert r.stop_reason == "end_turn"
    raw = [e for e in events if e in ("message_start", "content_block_start", "content_block_delta",
                                      "content_block_stop", "message_delta", "message_stop")]
    return {
        "events": raw,
        "stream_text": text,
        "stream_thinking": thinking,
        "block_types": [b.type for b in final.content],
        "usage": final.usage.model_dump(),
        "nonstream_text": "".join(b.text for b in r.content if b.type == "text"),
        "nonstream_usage": r.usage.model_dump(),
    }


def anthropic_thinking():
    c = ant()
    with c.messages.stream(model=MODEL, max_tokens=2048, thinking={"type": "enabled", "budget_tokens": 1024},
                           messages=[{"role": "user", "content": "think first"}]) as s:
        final = s.get_final_message()
    blocks = [b.type for b in final.content]
    assert blocks[0] == "thinking", blocks
    return {"block_types": blocks, "thinking": final.content[0].thinking}


def anthropic_tools():
    c = ant()
    messages = [{"role": "user", "content": "what is the weather in Paris?"}]
    with c.messages.stream(model=MODEL, max_tokens=1024, tools=[TOOL_ANTHROPIC], messages=messages) as s:
        first = s.get_final_message()
    assert first.stop_reason == "tool_use", first.stop_reason
    uses = [b for b in first.content if b.type == "tool_use"]
    assert len(uses) == 1 and uses[0].name == "get_weather" and uses[0].input == {"query": "mock"}, uses
    messages.append({"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]})
    messages.append({"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": uses[0].id, "content": "sunny, 21C"}]})
    with c.messages.stream(model=MODEL, max_tokens=1024, tools=[TOOL_ANTHROPIC], messages=messages) as s:
        second = s.get_final_message()
    assert second.stop_reason == "end_turn", second.stop_reason
    return {"tool_id": uses[0].id, "final_text": "".join(b.text for b in second.content if b.type == "text"),
            "usage": second.usage.model_dump()}


def wrong_key():
    out = {}
    try:
        oai("sk-wrong").chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
        out["openai"] = "accepted"
    except openai.AuthenticationError as e:
        out["openai"] = e.status_code
    try:
        ant("sk-wrong").messages.create(model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "hi"}])
        out["anthropic"] = "accepted"
    except anthropic.AuthenticationError as e:
        out["anthropic"] = [e.status_code, e.body["error"]["type"] if isinstance(e.body, dict) else None]
    return out


def reset_mid_stream():
    model = "mock-reset-after-data"
    out = {}
    text = ""
    try:
        for chunk in oai().chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}], stream=True):
            for choice in chunk.choices:
                text += choice.delta.content or ""
        out["openai"] = "completed silently"
    except openai.APIError as e:
        out["openai"] = {"error": type(e).__name__, "message": e.message, "text_before": text}
    text = ""
    try:
        with ant().messages.stream(model=model, max_tokens=10, messages=[{"role": "user", "content": "hi"}]) as s:
            for ev in s:
                if ev.type == "text":
                    text += ev.text
        out["anthropic"] = "completed silently"
    except anthropic.APIStatusError as e:
        out["anthropic"] = {"error": type(e).__name__, "type": e.body["error"]["type"] if isinstance(e.body, dict) else None,
                            "text_before": text}
    except anthropic.APIError as e:
        out["anthropic"] = {"error": type(e).__name__, "message": str(e), "text_before": text}
    return out


def pool_50():
    c = oai()
    a = ant()
    ok = 0
    for i in range(50):
        if i % 2 == 0:
            r = c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": f"request {i}"}])
            assert r.choices[0].finish_reason == "stop"
        else:
            r = a.messages.create(model=MODEL, max_tokens=64, messages=[{"role": "user", "content": f"request {i}"}])
            assert r.stop_reason == "end_turn"
        ok += 1
    return {"ok": ok}


def models():
    ids = [m.id for m in oai().models.list()]
    assert ids, "no models"
    return {"ids": ids}


CASES = {f.__name__: f for f in [openai_text, openai_tools, anthropic_text, anthropic_thinking, anthropic_tools,
                                 wrong_key, reset_mid_stream, pool_50, models]}

if __name__ == "__main__":
    result = CASES[sys.argv[1]]()
    print("RESULT " + json.dumps(result), flush=True)
