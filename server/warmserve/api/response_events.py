"""A streamed Responses API answer: its typed events, numbered in the order they are sent.

response.created and response.in_progress; per output item, output_item.added, its content
(a reasoning model's thinking first: a reasoning item's content_part.added, reasoning_text
deltas, reasoning_text.done, content_part.done; a message's content_part.added, output_text
deltas, output_text.done, content_part.done; a function call's arguments delta and done),
output_item.done; then response.completed or
response.incomplete with the whole response. A failure after the 200 is an `error` event and
then response.failed, whose response holds what was sent before it.
"""

from __future__ import annotations

from warmserve.api.response_items import function_call_item, new_item_id
from warmserve.api.streaming import sequenced_text_renderer, sse_data
from warmserve.api.tool_calls import ToolCallParser
from warmserve.errors import WarmServeError
from warmserve.protocol import (
    ArgumentsDeltaEvent,
    ArgumentsDoneEvent,
    ContentPartEvent,
    OutputItem,
    OutputItemEvent,
    OutputMessage,
    OutputText,
    OutputTextDeltaEvent,
    OutputTextDoneEvent,
    ReasoningItem,
    ReasoningText,
    ReasoningTextDeltaEvent,
    ReasoningTextDoneEvent,
    ResponseError,
    ResponseErrorEvent,
    ResponseEvent,
    ResponseLifecycleEvent,
    ResponseObject,
    ToolCall,
)
from warmserve.reasoning import Kind, ReasoningStart, splitter_for

# The codes a failed response's `error` may carry (OpenAI's list); the `error` event keeps ours.
_FAILED_CODES = {429: "rate_limit_exceeded"}


class ResponseEvents:
    """Frames for one response: start it, feed it the generated text, finish it, end it (or fail it)."""

    def __init__(
        self, response: ResponseObject, tool_names: frozenset[str], reasoning: ReasoningStart | None = None
    ) -> None:
        self._response = response  # as created: in progress, no output yet
        self._parser = ToolCallParser(tool_names) if tool_names else None
        self._splitter = splitter_for(reasoning)
        self._thinking: ReasoningItem | None = None  # the reasoning item being written, if one is open
        self._thought: list[str] = []
        self._number = 0  # the next event's sequence_number
        self.items: list[OutputItem] = []
        self._message: OutputMessage | None = None  # the message item being written, if one is open
        self._text: list[str] = []
        self._delta = sequenced_text_renderer(self._render_delta)  # rebuilt for each message: it names the item

    def _frame(self, event: ResponseEvent) -> str:
        event.sequence_number, self._number = self._number, self._number + 1
        return sse_data(event.model_dump(mode="json"), event=event.type)

    def _render_delta(self, text: str, number: int) -> str:
        item_id = "" if self._message is None else self._message.id
        event = OutputTextDeltaEvent(
            sequence_number=number, item_id=item_id, output_index=len(self.items) - 1, delta=text
        )
        return sse_data(event.model_dump(mode="json"), event=event.type)

    def start(self) -> list[str]:
        """created and in_progress; without tools or thinking the output is text, so its message opens at once."""
        frames = [
            self._frame(ResponseLifecycleEvent(type=kind, response=self._response))
            for kind in ("response.created", "response.in_progress")
        ]
        if self._parser is None and self._splitter is None:
            frames += self._open_message()
        return frames

    def feed(self, text: str) -> list[str]:
        if self._splitter is None:
            return self._answer(text)
        return self._split(self._splitter.feed(text))

    def _split(self, parts: list[tuple[Kind, str]]) -> list[str]:
        frames: list[str] = []
        for kind, text in parts:
            if kind == "reasoning":
                if self._thinking is None:
                    frames += self._open_thinking()
                frames.append(self._reasoning_delta(text))
            else:
                if self._thinking is not None:
                    frames += self._close_thinking(complete=True)
                frames += self._answer(text)
        return frames

    def _answer(self, text: str) -> list[str]:
        if self._parser is not None:
            return self._pieces(self._parser.feed(text))
        if not text:
            return []
        return [*(self._open_message() if self._message is None else []), self._text_delta(text)]

    def finish(self, complete: bool) -> list[str]:
        """Close what is open; `complete` False: the output was cut off (max_output_tokens)."""
        frames = self._split(self._splitter.finish()) if self._splitter is not None else []
        if self._thinking is not None:
            frames += self._close_thinking(complete)  # cut off while thinking
        frames += self._pieces(self._parser.finish()) if self._parser is not None else []
        if not any(item.type != "reasoning" for item in self.items):  # no answer: one empty message
            frames += self._open_message()
        if self._message is not None:
            frames += self._close_message(complete)
        return frames

    def end(self, response: ResponseObject) -> str:
        """The final event: completed or incomplete, with the whole response."""
        kind = "response.completed" if response.status == "completed" else "response.incomplete"
        return self._frame(ResponseLifecycleEvent(type=kind, response=response))

    def failed(self, error: WarmServeError) -> str:
        """An `error` event, then response.failed with the output sent so far (an open message as incomplete)."""
        info = error.info()
        frames = self._frame(ResponseErrorEvent(code=info.code, message=info.message, param=info.param))
        output = list(self.items)
        if self._message is not None:
            output[-1] = self._closed(self._message, complete=False)
        if self._thinking is not None:
            output[-1] = self._thought_item(self._thinking, complete=False)
        code = _FAILED_CODES.get(error.status_code, "server_error" if error.status_code >= 500 else "invalid_prompt")
        failed = self._response.model_copy(
            update={"status": "failed", "output": output, "error": ResponseError(code=code, message=info.message)}
        )
        return frames + self._frame(ResponseLifecycleEvent(type="response.failed", response=failed))

    def _text_delta(self, text: str) -> str:
        self._text.append(text)
        frame = self._delta(text, self._number)
        self._number += 1
        return frame

    def _pieces(self, pieces: list[str | ToolCall]) -> list[str]:
        frames: list[str] = []
        for piece in pieces:
            if isinstance(piece, str):
                if piece:
                    if self._message is None:
                        frames += self._open_message()
                    frames.append(self._text_delta(piece))
                continue
            if self._message is not None:
                frames += self._close_message(complete=True)
            frames += self._call(piece)
        return frames

    def _open_message(self) -> list[str]:
        message = OutputMessage(id=new_item_id("msg"), status="in_progress", content=[])
        self._message, self._text = message, []
        self.items.append(message)
        self._delta = sequenced_text_renderer(self._render_delta)
        index = len(self.items) - 1
        empty = OutputText(text="")
        return [
            self._frame(OutputItemEvent(type="response.output_item.added", output_index=index, item=message)),
            self._frame(
                ContentPartEvent(
                    type="response.content_part.added",
                    item_id=message.id,
                    output_index=index,
                    part=empty,
                )
            ),
        ]

    def _closed(self, message: OutputMessage, complete: bool) -> OutputMessage:
        part = OutputText(text="".join(self._text))
        return message.model_copy(update={"status": "completed" if complete else "incomplete", "content": [part]})

    def _close_message(self, complete: bool) -> list[str]:
        assert self._message is not None
        index = len(self.items) - 1
        done = self._closed(self._message, complete)
        self.items[index], self._message = done, None
        [part] = done.content
        return [
            self._frame(OutputTextDoneEvent(item_id=done.id, output_index=index, text=part.text)),
            self._frame(
                ContentPartEvent(type="response.content_part.done", item_id=done.id, output_index=index, part=part)
            ),
            self._frame(OutputItemEvent(type="response.output_item.done", output_index=index, item=done)),
        ]

    def _reasoning_delta(self, text: str) -> str:
        assert self._thinking is not None
        self._thought.append(text)
        delta = ReasoningTextDeltaEvent(item_id=self._thinking.id, output_index=len(self.items) - 1, delta=text)
        return self._frame(delta)

    def _open_thinking(self) -> list[str]:
        item = ReasoningItem(id=new_item_id("rs"), status="in_progress", content=[])
        self._thinking, self._thought = item, []
        self.items.append(item)
        index = len(self.items) - 1
        return [
            self._frame(OutputItemEvent(type="response.output_item.added", output_index=index, item=item)),
            self._frame(
                ContentPartEvent(
                    type="response.content_part.added", item_id=item.id, output_index=index, part=ReasoningText(text="")
                )
            ),
        ]

    def _thought_item(self, item: ReasoningItem, complete: bool) -> ReasoningItem:
        part = ReasoningText(text="".join(self._thought))
        return item.model_copy(update={"status": "completed" if complete else "incomplete", "content": [part]})

    def _close_thinking(self, complete: bool) -> list[str]:
        assert self._thinking is not None
        index = len(self.items) - 1
        done = self._thought_item(self._thinking, complete)
        self.items[index], self._thinking = done, None
        [part] = done.content
        return [
            self._frame(ReasoningTextDoneEvent(item_id=done.id, output_index=index, text=part.text)),
            self._frame(
                ContentPartEvent(type="response.content_part.done", item_id=done.id, output_index=index, part=part)
            ),
            self._frame(OutputItemEvent(type="response.output_item.done", output_index=index, item=done)),
        ]

    def _call(self, call: ToolCall) -> list[str]:
        done = function_call_item(call)
        added = done.model_copy(update={"arguments": "", "status": "in_progress"})
        self.items.append(done)
        index = len(self.items) - 1
        return [
            self._frame(OutputItemEvent(type="response.output_item.added", output_index=index, item=added)),
            self._frame(ArgumentsDeltaEvent(item_id=done.id, output_index=index, delta=done.arguments)),
            self._frame(
                ArgumentsDoneEvent(item_id=done.id, output_index=index, name=done.name, arguments=done.arguments)
            ),
            self._frame(OutputItemEvent(type="response.output_item.done", output_index=index, item=done)),
        ]
