"""The openai SDK's Responses API against cursor-proxy (driven by tests/responses.rs).

Usage: responses_cases.py CASE; prints one line `RESULT <json>`.
"""
import json
import os
import sys

from openai import OpenAI

MODEL = os.environ.get("PROXY_MODEL", "composer-2.5")
c = OpenAI(base_url=os.environ["PROXY_URL"] + "/v1", api_key=os.environ["PROXY_KEY"], max_retries=0)


def tool(name):
    return {"type": "function", "name": name, "description": f"{name} for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}


def text():
    r = c.responses.create(model=MODEL, input="hello", instructions="be brief",
                           reasoning={"effort": "low", "summary": "auto"}, metadata={"k": "v"})
    kinds = []
    with c.responses.stream(model=MODEL, input=[{"role": "user", "content": [{"type": "input_text", "text": "hi again"}]}],
                            reasoning={"effort": "low", "summary": "auto"}) as s:
        for ev in s:
            kinds.append(ev.type)
        final = s.get_final_response()
    summary = lambda resp: [p.text for i in resp.output if i.type == "reasoning" for p in i.summary]
    return {"nonstream_text": r.output_text, "stream_text": final.output_text, "usage": r.usage.model_dump(),
            "stream_usage": final.usage.model_dump(), "events": kinds, "status": [r.status, final.status],
            "reasoning": [summary(r), summary(final)], "metadata": r.metadata, "instructions": r.instructions}


def one_call_at_a_time():
    tools = [tool("get_weather"), tool("get_time")]
    r = c.responses.create(model=MODEL, input="weather and time in Paris?", tools=tools, parallel_tool_calls=False)
    seen = []
    for _ in range(4):
        calls = [i for i in r.output if i.type == "function_call"]
        if not calls:
            break
        seen.append([x.name for x in calls])
        r = c.responses.create(model=MODEL, previous_response_id=r.id, tools=tools, parallel_tool_calls=False,
                               input=[{"type": "function_call_output", "call_id": calls[0].call_id,
                                       "output": f"{calls[0].name} ok"}])
    return {"calls": seen, "final_text": r.output_text}


def partial_results():
    tools = [tool("get_weather"), tool("get_time")]
    with c.responses.stream(model=MODEL, input="both please", tools=tools) as s:
        first = s.get_final_response()
    calls = [i for i in first.output if i.type == "function_call"]
    items = [{"type": "function_call", "call_id": x.call_id, "name": x.name, "arguments": x.arguments} for x in calls]
    r = c.responses.create(model=MODEL, tools=tools, store=False,
                           input=[{"role": "user", "content": "both please"}, *items,
                                  {"type": "function_call_output", "call_id": calls[0].call_id, "output": "sunny"}])
    return {"calls": [x.name for x in calls], "final_text": r.output_text}


def errors():
    out = {}
    try:
        c.responses.create(model=MODEL, input="x", previous_response_id="resp_nope")
    except Exception as e:  # noqa: BLE001
        out["previous"] = [type(e).__name__, getattr(e, "status_code", None), str(e)]
    r = c.responses.create(model=MODEL, input="builtin tools are left out",
                           tools=[{"type": "web_search"}, {"type": "code_interpreter", "container": {"type": "auto"}}])
    out["builtin_text"] = r.output_text
    return out


CASES = {f.__name__: f for f in [text, one_call_at_a_time, partial_results, errors]}

if __name__ == "__main__":
    print("RESULT " + json.dumps(CASES[sys.argv[1]]()))
