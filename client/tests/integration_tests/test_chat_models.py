"""ChatWarmServe, and plain langchain-openai, against the session's real server (SmolLM2)."""

from langchain_core.messages import AIMessageChunk, HumanMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_openai import ChatOpenAI

from langchain_warmserve import ChatWarmServe, WarmServeLLM
from tests.standard_properties import MODEL, SECOND_MODEL

QUESTION = "Name three colours of the rainbow."


def merged(chunks: list[AIMessageChunk]) -> AIMessageChunk:
    full = chunks[0]
    for chunk in chunks[1:]:
        full += chunk
    return full


def test_answer_metadata_names_the_model_finish_reason_and_usage():
    answer = ChatWarmServe(max_tokens=4, temperature=0).invoke(QUESTION)
    assert answer.response_metadata["model_name"] == MODEL
    assert answer.response_metadata["finish_reason"] == "length"
    assert answer.usage_metadata is not None
    assert answer.usage_metadata["output_tokens"] == 4
    assert answer.usage_metadata["total_tokens"] == answer.usage_metadata["input_tokens"] + 4


def test_a_stream_has_the_same_text_and_usage_as_the_plain_answer():
    model = ChatWarmServe(max_tokens=24, temperature=0)
    plain = model.invoke(QUESTION)
    streamed = merged(list(model.stream(QUESTION)))
    assert streamed.content == plain.content
    assert streamed.usage_metadata == plain.usage_metadata
    assert streamed.response_metadata["finish_reason"] == plain.response_metadata["finish_reason"]


async def test_async_invoke_batch_and_stream_agree_at_temperature_zero():
    model = ChatWarmServe(max_tokens=16, temperature=0)
    plain = await model.ainvoke(QUESTION)
    batch = await model.abatch([QUESTION, QUESTION])
    streamed = merged([chunk async for chunk in model.astream(QUESTION)])
    assert [m.content for m in batch] == [plain.content, plain.content]
    assert streamed.content == plain.content


def test_the_same_seed_gives_the_same_sample():
    model = ChatWarmServe(max_tokens=12, temperature=1.0, seed=11)
    assert model.invoke(QUESTION).content == model.invoke(QUESTION).content


def test_stop_sequences_cut_the_answer():
    model = ChatWarmServe(max_tokens=24, temperature=0)
    full = str(model.invoke(QUESTION).content)
    word = full.split()[2]
    cut = model.invoke(QUESTION, stop=[word])
    assert cut.content == full[: full.index(word)]
    assert cut.response_metadata["finish_reason"] == "stop"


def test_a_call_can_name_another_served_model():
    answer = ChatWarmServe(max_tokens=4).invoke(QUESTION, model=SECOND_MODEL)
    assert answer.response_metadata["model_name"] == SECOND_MODEL


def test_an_lcel_chain_runs_through_the_server():
    prompt = ChatPromptTemplate.from_messages([("system", "Answer in one word."), ("human", "{question}")])
    chain = prompt | ChatWarmServe(max_tokens=8, temperature=0) | StrOutputParser()
    assert chain.invoke({"question": "Rose is which type of flower?"}).strip()


def test_plain_langchain_openai_chat_works_against_the_server(warmserve_url):
    model = ChatOpenAI(base_url=warmserve_url, api_key="unused", model=MODEL, max_tokens=16, temperature=0)
    plain = model.invoke(QUESTION)
    assert plain.content
    assert plain.usage_metadata is not None
    assert plain.response_metadata["finish_reason"] in {"stop", "length"}
    streamed = merged(list(model.stream(QUESTION)))
    assert streamed.content == plain.content
    with_usage = merged(list(model.stream(QUESTION, stream_usage=True)))
    assert with_usage.usage_metadata == plain.usage_metadata


def test_token_counts_come_from_the_servers_tokenizer_and_chat_template():
    model = ChatWarmServe(temperature=0, max_tokens=1)
    assert model.get_num_tokens(QUESTION) > 0
    counted = model.get_num_tokens_from_messages([HumanMessage(QUESTION)])
    answer = model.invoke(QUESTION)
    assert answer.usage_metadata is not None
    assert counted == answer.usage_metadata["input_tokens"]


def test_capabilities_and_profile_are_read_from_the_server():
    model = ChatWarmServe(model=MODEL)
    capabilities = model.server_capabilities()
    assert (capabilities["chat"], capabilities["logprobs"], capabilities["backend"]) == (
        True,
        True,
        "llama_cpp",
    )
    assert capabilities["context_length"] == 2048  # the n_ctx the test server runs with
    profile = model.load_profile()
    assert profile["max_input_tokens"] == 2048
    assert profile["tool_calling"] == capabilities["tools"]
    assert profile["structured_output"] == capabilities["json_schema"]
    assert WarmServeLLM(model=MODEL).server_capabilities() == capabilities


def test_logprobs_reach_the_answer_metadata():
    answer = ChatWarmServe(model=MODEL, temperature=0, max_tokens=5, logprobs=True).invoke("Hi")
    tokens = answer.response_metadata["logprobs"]["content"]
    assert "".join(token["token"] for token in tokens) == answer.content
