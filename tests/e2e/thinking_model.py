"""A reasoning model for the tests: SmolLM2 made to think by a chat template of its own.

No reasoning model ships on PyPI. This template is SmolLM2's ChatML with a generation prompt
that opens a `<think>` block unless `enable_thinking` is false (as Qwen3's and SmolLM3's
templates do), and that drops past thinking from assistant turns; given to SmolLM2 through the
model spec's `chat_template` override, it makes a model that thinks until it ends or its budget
closes the block, then answers. `explode` (a chat_template_kwargs variable) makes it fail.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

THINKING_TEMPLATE = """\
{%- for message in messages %}
<|im_start|>{{ message['role'] }}
{% if message['role'] == 'assistant' %}{{ message['content'].split('</think>')[-1].strip() }}\
{% else %}{{ message['content'] }}{% endif %}<|im_end|>
{% endfor %}
{%- if explode is defined %}{{ explode.a.b }}{% endif %}
{%- if add_generation_prompt %}
<|im_start|>assistant
{% if enable_thinking is not defined or enable_thinking %}<think>
{% endif %}
{%- endif %}
"""
BUDGETS = {"minimal": 8}  # thinking tokens of reasoning effort "minimal"


def thinking_spec(directory: Path, **spec: Any) -> dict[str, Any]:
    """A model spec (as config data) of SmolLM2 with the thinking template, written into `directory`."""
    template = directory / "thinking.jinja"
    template.write_text(THINKING_TEMPLATE)
    return {**spec, "chat_template": str(template), "reasoning": {"effort_budgets": BUDGETS}}
