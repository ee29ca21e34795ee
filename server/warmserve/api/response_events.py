"""A streamed Responses API answer: its typed events, numbered in the order they are sent.

response.created and response.in_progress; per output item, output_item.added, its content
(a message's content_part.added, output_text deltas, output_text.done, content_part.done; a
function call's arguments delta and done), output_item.done; then response.completed or
response.incomplete with the whole response. A failure after the 200 is an `error` event and
then response.failed.
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
    ResponseError,
    ResponseErrorEvent,
    ResponseEvent,
    ResponseLifecycleEvent,
    ResponseObject,
    ToolCall,
)


class ResponseEvents:
    """Frames for one response: feed it the generated text, then finish it with the final response."""

    def __init__(self, response: ResponseObject, tool_names: frozenset[str]) -> None:
        self._response = response  # as created: in progress, no output yet
        self._parser = ToolCallParser(tool_names) if tool_names else None
        self._number = 0
        self.items: list[OutputItem] = []
        self._message: OutputMessage | None = None  # the message item being written, if one is open
        self._text: list[str] = []
        self._delta = sequenced_text_renderer(self._render_delta)  # rebuilt for each message: it names the item

    def _frame(self, event: ResponseEvent) -> str:
        self._number += 1
        return sse_data(event.model_dump(mode="json"), event=event.type)

    def _render_delta(self, text: str, number: int) -> str:
        event = OutputTextDeltaEvent(
            sequence_number=number,
            item_id="" if self._message is None else self._message.id,
            output_index=len(self.items) - 1,
            content_index=0,
            delta=text,
        )
        return sse_data(event.model_dump(mode="json"), event=event.type)

    def start(self) -> list[str]:
        """created and in_progress; without tools the output is text, so its message opens at once."""
        frames = [
            self._frame(ResponseLifecycleEvent(type=kind, sequence_number=self._number, response=self._response))
            for kind in ("response.created", "response.in_progress")
        ]
        if self._parser is None:
            frames += self._open_message()
        return frames

    def feed(self, text: str) -> list[str]:
        if self._parser is None:
            return [self._text_delta(text)] if text else []
        return self._pieces(self._parser.feed(text))

    def finish(self, complete: bool) -> list[str]:
        """Close what is open; `complete` False: the output was cut off (max_output_tokens)."""
        frames = self._pieces(self._parser.finish()) if self._parser is not None else []
        if not self.items:  # nothing at all: one empty message, as for any empty answer
            frames += self._open_message()
        if self._message is not None:
            frames += self._close_message(complete)
        return frames

    def end(self, response: ResponseObject) -> str:
        """The final event: completed or incomplete, with the whole response."""
        kind = "response.completed" if response.status == "completed" else "response.incomplete"
        return self._frame(ResponseLifecycleEvent(type=kind, sequence_number=self._number, response=response))

    def failed(self, error: WarmServeError) -> str:
        """An `error` event and then response.failed, which the openai client raises on."""
        info = error.info()
        event = ResponseErrorEvent(sequence_number=self._number, code=info.code, message=info.message, param=info.param)
        frames = self._frame(event)
        failed = self._response.model_copy(
            update={
                "status": "failed",
                "output": self.items,
                "error": ResponseError(code=info.code, message=info.message),
            }
        )
        return frames + self._frame(
            ResponseLifecycleEvent(type="response.failed", sequence_number=self._number, response=failed)
        )

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
        return [
            self._frame(
                OutputItemEvent(
                    type="response.output_item.added", sequence_number=self._number, output_index=index, item=message
                )
            ),
            self._frame(
                ContentPartEvent(
                    type="response.content_part.added",
                    sequence_number=self._number,
                    item_id=message.id,
                    output_index=index,
                    content_index=0,
                    part=OutputText(text=""),
                )
            ),
        ]

    def _close_message(self, complete: bool) -> list[str]:
        assert self._message is not None
        index = len(self.items) - 1
        part = OutputText(text="".join(self._text))
        done = self._message.model_copy(update={"status": "completed" if complete else "incomplete", "content": [part]})
        self.items[index], self._message = done, None
        return [
            self._frame(
                OutputTextDoneEvent(
                    sequence_number=self._number, item_id=done.id, output_index=index, content_index=0, text=part.text
                )
            ),
            self._frame(
                ContentPartEvent(
                    type="response.content_part.done",
                    sequence_number=self._number,
                    item_id=done.id,
                    output_index=index,
                    content_index=0,
                    part=part,
                )
            ),
            self._frame(
                OutputItemEvent(
                    type="response.output_item.done", sequence_number=self._number, output_index=index, item=done
                )
            ),
        ]

    def _call(self, call: ToolCall) -> list[str]:
        done = function_call_item(call)
        added = done.model_copy(update={"arguments": "", "status": "in_progress"})
        self.items.append(done)
        index = len(self.items) - 1
        return [
            self._frame(
                OutputItemEvent(
                    type="response.output_item.added", sequence_number=self._number, output_index=index, item=added
                )
            ),
            self._frame(
                ArgumentsDeltaEvent(
                    sequence_number=self._number, item_id=done.id, output_index=index, delta=done.arguments
                )
            ),
            self._frame(
                ArgumentsDoneEvent(
                    sequence_number=self._number,
                    item_id=done.id,
                    output_index=index,
                    name=done.name,
                    arguments=done.arguments,
                )
            ),
            self._frame(
                OutputItemEvent(
                    type="response.output_item.done", sequence_number=self._number, output_index=index, item=done
                )
            ),
        ]
