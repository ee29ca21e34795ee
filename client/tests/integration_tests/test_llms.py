"""WarmServeLLM (text completions) against the session's real server (SmolLM2)."""

from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import PromptTemplate
from langchain_openai import OpenAI

from langchain_warmserve import WarmServeLLM
from tests.standard_properties import MODEL

PROMPT = "The three primary colours are"


def test_invoke_returns_the_continuation():
    assert WarmServeLLM(max_tokens=8, temperature=0).invoke(PROMPT).strip()


def test_a_stream_has_the_same_text_as_the_plain_answer():
    llm = WarmServeLLM(max_tokens=12, temperature=0)
    chunks = list(llm.stream(PROMPT))
    assert len(chunks) > 1
    assert "".join(chunks) == llm.invoke(PROMPT)


def test_batch_answers_each_prompt_in_order():
    llm = WarmServeLLM(max_tokens=6, temperature=0)
    prompts = [PROMPT, "Roses are red, violets are"]
    assert llm.batch(prompts) == [llm.invoke(p) for p in prompts]


async def test_async_invoke_batch_and_stream_agree_at_temperature_zero():
    llm = WarmServeLLM(max_tokens=10, temperature=0)
    plain = await llm.ainvoke(PROMPT)
    assert await llm.abatch([PROMPT, PROMPT]) == [plain, plain]
    assert "".join([chunk async for chunk in llm.astream(PROMPT)]) == plain


def test_generate_reports_usage_and_finish_reason():
    result = WarmServeLLM(max_tokens=5, temperature=0).generate([PROMPT])
    assert result.llm_output is not None
    usage = result.llm_output["token_usage"]
    assert usage["completion_tokens"] == 5
    assert usage["total_tokens"] == usage["prompt_tokens"] + 5
    assert result.llm_output["model_name"] == MODEL
    assert result.generations[0][0].generation_info is not None
    assert result.generations[0][0].generation_info["finish_reason"] == "length"


def test_stop_sequences_cut_the_text():
    llm = WarmServeLLM(max_tokens=12, temperature=0)
    full = llm.invoke(PROMPT)
    word = full.split()[1]
    assert llm.invoke(PROMPT, stop=[word]) == full[: full.index(word)]
    assert WarmServeLLM(max_tokens=12, temperature=0, stop=[word]).invoke(PROMPT) == full[: full.index(word)]


def test_an_lcel_chain_runs_through_the_server():
    chain = PromptTemplate.from_template("Question: {question}\nAnswer: ") | WarmServeLLM(
        max_tokens=12, temperature=0
    )
    assert (chain | StrOutputParser()).invoke({"question": "Rose is which type of flower?"}).strip()


def test_plain_langchain_openai_llm_works_against_the_server(warmserve_url):
    llm = OpenAI(base_url=warmserve_url, api_key="unused", model=MODEL, max_tokens=8, temperature=0)
    assert llm.invoke(PROMPT) == WarmServeLLM(max_tokens=8, temperature=0).invoke(PROMPT)
