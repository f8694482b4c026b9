"""Provider servers for tests and benchmarks, on 127.0.0.1.

:class:`ProviderServer` speaks enough of the OpenAI API (``/v1/chat/completions``
with and without SSE streaming, ``/v1/embeddings``) and of the Ollama API
(``/api/generate``, ``/api/chat``, ``/api/embed``, ``/api/show``) for LiteLLM
to talk to it over real HTTP. It records every request and can be told to
fail the next requests in the ways real providers fail.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

DEFAULT_REPLY = "Hello from the loopback provider, streamed in parts."

#: What ``fail(mode)`` can make the server do, and what each mode does.
#: Modes answer whatever was asked (chat, a stream, embeddings) in the way
#: that fits it; the ``emb-*`` modes only change embedding replies.
FAILURE_MODES = {
    # HTTP errors. The 401, 403 and "echo-*" messages quote the credential
    # the client sent (the bearer token), as some providers do.
    "401": "401 quoting the key",
    "403": "403 quoting the key",
    "404": "404, model not found",
    "400": "400, unsupported value",
    "422": "422, unprocessable",
    "echo-400": "400 whose message quotes the key",
    "echo-404": "404 whose message quotes the key",
    "context": "400, context length exceeded",
    "429": "429 with Retry-After: state.retry_after (30 by default)",
    "429-bare": "429 without Retry-After",
    "500": "500 with a JSON error",
    "502": "502 with a JSON error",
    "503": "503 with a JSON error",
    "html-500": "500 with an HTML error page",
    # Replies that arrive (HTTP 200) but carry no usable answer.
    "html-200": "200 with an HTML page",
    "malformed": "200 with truncated JSON",
    "empty-body": "200 with an empty body",
    "wrong-json": "200 with JSON of another shape",
    "no-answer": "no choices / only [DONE] / an empty data list",
    "null-content": "an answer without content / vectors without embedding",
    "stream-garbage": "a stream of lines that are not JSON",
    "stream-error": "an SSE error event (a 200 error object when not streamed)",
    # Connections that fail.
    "reset": "the connection closed before any reply",
    "drop": "the connection dropped halfway through the body",
    "cut": "a stream cut off halfway (a non-streamed reply: as drop)",
    "slow": "an answer after slow_seconds (past the client's timeout)",
    # Embedding replies that are wrong.
    "emb-short": "vectors one dimension short",
    "emb-long": "vectors one dimension long",
    "emb-nan": "a NaN value",
    "emb-inf": "an infinite value",
    "emb-null-value": "a null value",
    "emb-string-value": "a string value",
    "emb-fewer": "one vector fewer than inputs",
    "emb-extra": "one vector more than inputs",
    "emb-dup-index": "two items with the same index",
    "emb-bad-index": "an index out of range",
    # Base64 replies that are wrong (sent as base64 whatever was asked).
    "emb-base64-short": "base64 of a vector one float32 short",
    "emb-base64-ragged": "base64 of a length that is not whole float32 values",
    "emb-base64-invalid": "a string that is not base64",
}

HTML_PAGE = (
    b"<!DOCTYPE html><html><head><title>Error</title></head>"
    b"<body><h1>Something went wrong</h1><p>Please try later.</p></body></html>"
)


@functools.lru_cache(maxsize=20_000)
def fake_array(text: str, dimensions: int = 8) -> np.ndarray:
    """:func:`fake_vector` as a float32 array (read-only: it is cached, so
    that a benchmark's server answers as fast as a real provider's network
    would let it)."""
    blocks = -(-dimensions // 32)
    digest = b"".join(
        hashlib.sha256(f"{block}:{text}".encode()).digest() for block in range(blocks)
    )
    values = np.frombuffer(digest, dtype=np.uint8)[:dimensions] / 255
    values = np.round(values, 6).astype(np.float32)
    values.setflags(write=False)
    return values


def fake_vector(text: str, dimensions: int = 8) -> list[float]:
    """The vector the server returns for ``text`` (tests recompute it).

    Its values are float32 numbers, as a real provider's are, so the JSON
    numbers and the base64 bytes of a reply carry exactly the same vector.
    """
    return fake_array(text, dimensions).tolist()


def base64_vector(values: Any) -> str:
    """``values`` as OpenAI sends them for ``encoding_format: "base64"``:
    little-endian float32 bytes, base64-encoded."""
    return base64.b64encode(np.asarray(values, dtype="<f4").tobytes()).decode()


@functools.lru_cache(maxsize=20_000)
def _base64_json(text: str, dimensions: int) -> bytes:
    """``text``'s vector as the JSON string of a base64 reply (cached)."""
    return json.dumps(base64_vector(fake_array(text, dimensions))).encode()


def base64_reply(inputs: list[str], dimensions: int, model: str) -> bytes:
    """The body ``json.dumps`` would make of an OpenAI base64 embedding reply,
    put together from cached parts: a real provider builds its replies on
    other machines, so the benchmarks' server must not spend the client's
    cores doing it (it cost the client's machine 6 ms of CPU per 100
    vectors of 1,536 dimensions, more than the client's own decoding)."""
    items = b", ".join(
        b'{"object": "embedding", "index": %d, "embedding": %s}'
        % (i, _base64_json(text, dimensions))
        for i, text in enumerate(inputs)
    )
    tokens = sum(len(t.split()) for t in inputs)
    return b'{"object": "list", "data": [%s], "model": %s, "usage": %s}' % (
        items,
        json.dumps(model).encode(),
        json.dumps({"prompt_tokens": tokens, "total_tokens": tokens}).encode(),
    )


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any

    @property
    def json(self) -> Any:
        return self.body


@dataclass
class ServerState:
    reply: str = DEFAULT_REPLY
    dimensions: int = 8
    #: Seconds to wait before answering every request (benchmarks).
    latency: float = 0.0
    #: If set, every POST waits for it (at most ``hold_seconds``) before
    #: answering: a test lets the answers go when it is ready.
    hold: threading.Event | None = None
    hold_seconds: float = 60.0
    #: Seconds a "slow" failure waits (longer than the client's timeout).
    slow_seconds: float = 3.0
    #: Return embedding items in reverse order (with their "index").
    shuffle_embeddings: bool = False
    #: Answer ``encoding_format: "base64"`` with base64, as OpenAI does;
    #: False: JSON numbers whatever was asked (a server ignoring it).
    base64_when_asked: bool = True
    #: Seconds between streamed chunks (to watch an answer arrive in parts).
    chunk_delay: float = 0.0
    #: ``time.time()`` when the first content chunk of each stream was sent.
    first_token_times: list[float] = field(default_factory=list)
    #: The message of every JSON error reply while set, in place of the
    #: mode's own (what a page does with a provider's markup, say).
    error_message: str | None = None
    failures: list[str] = field(default_factory=list)
    #: A failure mode for every request until reset (after ``failures``).
    always: str | None = None
    requests: list[RecordedRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    in_flight: int = 0
    max_in_flight: int = 0
    #: The ``Retry-After`` header of a "429" failure.
    retry_after: str = "30"
    #: Fail this share of requests (at random, seeded) in ``random_mode``.
    random_failures: float = 0.0
    random_mode: str = "429"
    random: Any = None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    #: An idle keep-alive connection is closed after this many seconds, and
    #: its thread ends: clients kept in caches (LiteLLM's, the SDK's, one per
    #: event loop) would otherwise hold a server thread each for the rest of
    #: the test run (hundreds of threads by the end of the fault matrix).
    timeout = 10
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass  # Keep test output clean.

    # -- plumbing --------------------------------------------------------

    def _send_json(self, status: int, payload: Any) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _send_raw(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _start_stream(self, content_type: str) -> None:
        # Chunked transfer encoding, as real providers stream: a connection
        # closed before the last (empty) chunk is detectably cut off.
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def _write(self, data: str) -> None:
        encoded = data.encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(encoded), encoded))
        self.wfile.flush()

    def _end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _cut_stream(self, partial: str) -> None:
        """Send half a line, then drop the connection mid-body."""
        self._write(partial)
        self.close_connection = True
        self.wfile.flush()
        self.connection.shutdown(2)

    def do_GET(self) -> None:  # noqa: N802
        self._record(None)
        if self.path == "/api/tags":
            self._send_json(200, {"models": []})
        else:
            self._send_json(404, {"error": {"message": "not found"}})

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            body = raw.decode(errors="replace")
        state = self.server.state
        self._record(body)
        with state.lock:
            state.in_flight += 1
            state.max_in_flight = max(state.max_in_flight, state.in_flight)
            failure = state.failures.pop(0) if state.failures else state.always
            if (
                failure is None
                and state.random_failures
                and state.random.random() < state.random_failures
            ):
                failure = state.random_mode
        try:
            if state.hold is not None:
                state.hold.wait(state.hold_seconds)
            if state.latency:
                time.sleep(state.latency)
            if failure and self._fail(failure, body):
                return
            self._route(body, failure)
        except (BrokenPipeError, ConnectionResetError):
            pass  # The client went away (a stopped stream): nothing to answer.
        finally:
            with state.lock:
                state.in_flight -= 1

    def _record(self, body: Any) -> None:
        state = self.server.state
        with state.lock:
            state.requests.append(
                RecordedRequest(
                    method=self.command,
                    path=self.path,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                )
            )

    # -- failures --------------------------------------------------------

    def _error(
        self,
        status: int,
        message: str,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        message = self.server.state.error_message or message
        body = json.dumps(
            {"error": {"message": message, "type": "test_error", "code": code}}
        ).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _credential(self) -> str:
        """The credential the client sent (as a provider quoting it would)."""
        authorization = self.headers.get("Authorization") or ""
        return authorization.removeprefix("Bearer ").strip() or "(none)"

    def _drop(self, body: bytes) -> None:
        """Promise ``body`` in full, send half of it, close the connection."""
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2])
        self.wfile.flush()
        self.close_connection = True
        self.connection.shutdown(2)

    def _fail(self, failure: str, body: Any) -> bool:
        """Answer with ``failure``; False for failures that change the answer
        itself (the route then answers, in that mode)."""
        key = self._credential()
        streamed = isinstance(body, dict) and bool(body.get("stream"))
        if failure == "401":
            self._error(
                401,
                f"Incorrect API key provided: {key}. "
                "You can find your API key at https://example.invalid.",
                "invalid_api_key",
            )
        elif failure == "403":
            self._error(
                403, f"Key {key} has no access to this project.", "permission_denied"
            )
        elif failure == "404":
            self._error(404, "The model does not exist.", "model_not_found")
        elif failure == "400":
            self._error(400, "Unsupported value: 'temperature'.", "unsupported_value")
        elif failure == "422":
            self._error(422, "The request could not be processed.", "unprocessable")
        elif failure == "echo-400":
            self._error(400, f"Invalid request made with key {key}.", "invalid")
        elif failure == "echo-404":
            self._error(404, f"No model for the key {key}.", "model_not_found")
        elif failure == "context":
            self._error(
                400,
                "This model's maximum context length is 16385 tokens. However, your "
                "messages resulted in 20000 tokens.",
                "context_length_exceeded",
            )
        elif failure == "429":
            self._error(
                429,
                "Rate limit reached.",
                "rate_limit_exceeded",
                {"Retry-After": self.server.state.retry_after},
            )
        elif failure == "429-bare":
            self._error(429, "Rate limit reached.", "rate_limit_exceeded")
        elif failure in ("500", "502", "503"):
            self._error(int(failure), "The server had an error.", "server_error")
        elif failure == "html-500":
            self._send_raw(500, HTML_PAGE, "text/html")
        elif failure == "html-200":
            self._send_raw(200, HTML_PAGE, "text/html")
        elif failure == "malformed":
            self._send_raw(
                200, b'{"id": "chatcmpl-1", "choices": [', "application/json"
            )
        elif failure == "empty-body":
            self._send_raw(200, b"", "application/json")
        elif failure == "wrong-json":
            self._send_json(200, {"unexpected": True})
        elif failure == "reset":
            self.close_connection = True
            self.connection.shutdown(2)
        elif failure == "drop" or (failure == "cut" and not streamed):
            self._drop(json.dumps({"id": "x", "choices": [], "data": []}).encode())
        elif failure == "cut":
            self.server.cut_next = True
            return False
        elif failure == "slow":
            time.sleep(self.server.state.slow_seconds)
            self._route(body)
        elif failure in FAILURE_MODES:
            return False  # The route answers in this mode.
        else:
            raise ValueError(f"unknown failure mode {failure!r}")
        return True

    # -- routes ----------------------------------------------------------

    def _route(self, body: Any, mode: str | None = None) -> None:
        body = body if isinstance(body, dict) else {}
        if self.path.split("?")[0] == "/v1/chat/completions":
            self._openai_chat(body, mode)
            return
        if self.path.split("?")[0] == "/v1/embeddings":
            self._openai_embeddings(body, mode)
            return
        routes = {
            "/api/generate": self._ollama_generate,
            "/api/chat": self._ollama_chat,
            "/api/embed": self._ollama_embed,
            "/api/show": self._ollama_show,
        }
        route = routes.get(self.path.split("?")[0])
        if route is None:
            self._error(404, f"no route {self.path}")
            return
        route(body)

    def _words(self) -> list[str]:
        reply = self.server.state.reply
        words = reply.split(" ")
        return [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words)]

    def _take_cut(self) -> bool:
        cut = getattr(self.server, "cut_next", False)
        self.server.cut_next = False
        return cut

    def _error_object(self) -> dict:
        return {
            "error": {
                "message": "The server is overloaded.",
                "type": "server_error",
                "code": "server_error",
            }
        }

    def _openai_chat(self, body: dict, mode: str | None = None) -> None:
        model = body.get("model", "")
        if mode == "stream-garbage" and not body.get("stream"):
            self._send_raw(200, b"data: not json at all", "application/json")
            return
        if mode == "stream-error" and not body.get("stream"):
            self._send_json(200, self._error_object())
            return
        prompt_tokens = sum(
            len(str(m.get("content", "")).split()) for m in body.get("messages", [])
        )
        reply = self.server.state.reply
        completion_tokens = len(reply.split())
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        if not body.get("stream"):
            self._send_json(
                200,
                {
                    "id": "chatcmpl-test",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": model,
                    "choices": []
                    if mode == "no-answer"
                    else [
                        {
                            "index": 0,
                            "message": {
                                "role": "assistant",
                                "content": None if mode == "null-content" else reply,
                            },
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": usage,
                },
            )
            return
        cut = self._take_cut()
        self._start_stream("text/event-stream")

        def chunk(delta: dict, finish: str | None = None, **extra: Any) -> None:
            payload = {
                "id": "chatcmpl-test",
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                **extra,
            }
            self._write(f"data: {json.dumps(payload)}\n\n")

        if mode == "no-answer":
            self._write("data: [DONE]\n\n")
            self._end_stream()
            return
        # A role-only first chunk and an empty keep-alive delta mid-stream, as
        # real providers send: neither may end the stream.
        chunk({"role": "assistant", "content": ""})
        if mode in ("null-content", "stream-garbage", "stream-error"):
            if mode == "null-content":
                chunk({})
                chunk({}, "stop")
            elif mode == "stream-garbage":
                self._write("data: {this is not json\n\n")
                self._write("data: <html>\n\n")
            else:
                self._write(f"data: {json.dumps(self._error_object())}\n\n")
            self._write("data: [DONE]\n\n")
            self._end_stream()
            return
        words = self._words()
        state = self.server.state
        for position, word in enumerate(words):
            if cut and position == len(words) // 2:
                self._cut_stream('data: {"id": "chatcmpl-test", "choices": [{"ind')
                return
            if position and state.chunk_delay:
                time.sleep(state.chunk_delay)
            chunk({"content": word})
            if position == 0:
                state.first_token_times.append(time.time())
            if position == 1:
                chunk({})
        chunk({}, "stop")
        if (body.get("stream_options") or {}).get("include_usage"):
            self._write(
                "data: "
                + json.dumps(
                    {
                        "id": "chatcmpl-test",
                        "object": "chat.completion.chunk",
                        "created": int(time.time()),
                        "model": model,
                        "choices": [],
                        "usage": usage,
                    }
                )
                + "\n\n"
            )
        self._write("data: [DONE]\n\n")
        self._end_stream()

    def _embedding_inputs(self, body: dict) -> list[str]:
        inputs = body.get("input", [])
        return [inputs] if isinstance(inputs, str) else list(inputs)

    def _openai_embeddings(self, body: dict, mode: str | None = None) -> None:
        state = self.server.state
        if mode == "stream-garbage":
            self._send_raw(200, b"data: not json at all", "application/json")
            return
        if mode == "stream-error":
            self._send_json(200, self._error_object())
            return
        inputs = self._embedding_inputs(body)
        as_base64 = body.get("encoding_format") == "base64" and state.base64_when_asked
        if as_base64 and not mode and not state.shuffle_embeddings:
            reply = base64_reply(inputs, state.dimensions, body.get("model", ""))
            self._send_raw(200, reply, "application/json")
            return
        data: list[dict[str, Any]] = [
            {
                "object": "embedding",
                "index": i,
                # Straight from the float32 array when base64 is asked for
                # and nothing is to be spoilt (the same bytes, sooner).
                "embedding": base64_vector(fake_array(t, state.dimensions))
                if as_base64 and not mode
                else fake_vector(t, state.dimensions),
            }
            for i, t in enumerate(inputs)
        ]
        if data and mode:
            data = self._wrong_embeddings(data, mode)
        if as_base64 and mode:
            for item in data:
                vector = item.get("embedding")
                # A null or string value has no float32 form: sent as JSON.
                if isinstance(vector, list) and all(
                    isinstance(v, float) for v in vector
                ):
                    item["embedding"] = base64_vector(vector)
        if data and mode and mode.startswith("emb-base64-"):
            data[-1]["embedding"] = self._wrong_base64(data[-1]["embedding"], mode)
        if state.shuffle_embeddings:
            data.reverse()
        tokens = sum(len(t.split()) for t in inputs)
        self._send_json(
            200,
            {
                "object": "list",
                "data": data,
                "model": body.get("model", ""),
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            },
        )

    @staticmethod
    def _wrong_base64(vector: Any, mode: str) -> str:
        """The base64 form of ``vector`` spoilt the way ``mode`` says."""
        encoded = vector if isinstance(vector, str) else base64_vector(vector)
        raw = base64.b64decode(encoded)
        if mode == "emb-base64-short":
            return base64.b64encode(raw[:-4]).decode()
        if mode == "emb-base64-ragged":
            return base64.b64encode(raw[:-2]).decode()
        return "not base64: " + encoded[:8]

    @staticmethod
    def _wrong_embeddings(data: list[dict[str, Any]], mode: str) -> list[dict]:
        """``data`` spoilt the way ``mode`` says (the last item, if one)."""
        last = data[-1]
        vector = last["embedding"]
        if mode == "no-answer":
            return []
        if mode == "null-content":
            del last["embedding"]
        elif mode == "emb-short":
            last["embedding"] = vector[:-1]
        elif mode == "emb-long":
            last["embedding"] = [*vector, 0.5]
        elif mode == "emb-nan":
            vector[0] = float("nan")  # json.dumps writes NaN, json.loads reads it
        elif mode == "emb-inf":
            vector[0] = float("inf")
        elif mode == "emb-null-value":
            vector[0] = None
        elif mode == "emb-string-value":
            vector[0] = "0.5"
        elif mode == "emb-fewer":
            return data[:-1]
        elif mode == "emb-extra":
            return [*data, {**last, "index": len(data)}]
        elif mode == "emb-dup-index":
            if len(data) == 1:
                return [last, {**last}]
            last["index"] = 0
        elif mode == "emb-bad-index":
            last["index"] = len(data) + 5
        return data

    def _ollama_generate(self, body: dict) -> None:
        self._ollama_answer(body, chat=False)

    def _ollama_chat(self, body: dict) -> None:
        self._ollama_answer(body, chat=True)

    def _ollama_answer(self, body: dict, *, chat: bool) -> None:
        model = body.get("model", "")
        reply = self.server.state.reply

        def piece(text: str, done: bool) -> dict:
            payload: dict[str, Any] = {
                "model": model,
                "created_at": "2026-11-24T00:00:00Z",
                "done": done,
            }
            if chat:
                payload["message"] = {"role": "assistant", "content": text}
            else:
                payload["response"] = text
            if done:
                payload.update(
                    done_reason="stop",
                    prompt_eval_count=5,
                    eval_count=len(reply.split()),
                )
            return payload

        if body.get("stream") is False:
            self._send_json(200, piece(reply, True))
            return
        cut = self._take_cut()
        self._start_stream("application/x-ndjson")
        words = self._words()
        for position, word in enumerate(words):
            if cut and position == len(words) // 2:
                self._cut_stream('{"model": "')
                return
            self._write(json.dumps(piece(word, False)) + "\n")
        self._write(json.dumps(piece("", True)) + "\n")
        self._end_stream()

    def _ollama_embed(self, body: dict) -> None:
        state = self.server.state
        inputs = self._embedding_inputs(body)
        self._send_json(
            200,
            {
                "model": body.get("model", ""),
                "embeddings": [fake_vector(t, state.dimensions) for t in inputs],
                # LiteLLM fails on replies without it, and real Ollama sends it.
                "prompt_eval_count": sum(len(t.split()) for t in inputs),
            },
        )

    def _ollama_show(self, body: dict) -> None:
        self._send_json(
            200,
            {
                "modelfile": "",
                "parameters": "",
                "template": "{{ .Prompt }}",
                "details": {"family": "test"},
                "model_info": {"test.context_length": 4096},
            },
        )


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: ServerState
    cut_next: bool = False

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client dropping a kept-alive connection between requests (as
        # HTTP clients do when they are closed or collected) is nothing the
        # server did wrong: no traceback in the test output.
        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            return
        super().handle_error(request, client_address)


class ProviderServer:
    """A provider on 127.0.0.1, started with ``start()``, reset between tests."""

    def __init__(self) -> None:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.state = ServerState()
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def state(self) -> ServerState:
        return self._server.state

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_base(self) -> str:
        return f"{self.url}/v1"

    @property
    def requests(self) -> list[RecordedRequest]:
        with self.state.lock:
            return list(self.state.requests)

    def requests_to(self, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.split("?")[0] == path]

    def start(self) -> ProviderServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def reset(self) -> None:
        self._server.cut_next = False
        self._server.state = ServerState()

    def fail(self, mode: str, times: int = 1) -> None:
        """Make the next ``times`` POST requests fail in ``mode``."""
        if mode not in FAILURE_MODES:
            raise ValueError(f"mode must be one of {sorted(FAILURE_MODES)}")
        with self.state.lock:
            self.state.failures.extend([mode] * times)

    def fail_randomly(self, share: float, mode: str = "429", seed: int = 1) -> None:
        """Make ``share`` of the POST requests (at random, from ``seed``)
        fail in ``mode``."""
        import random

        if mode not in FAILURE_MODES:
            raise ValueError(f"mode must be one of {sorted(FAILURE_MODES)}")
        with self.state.lock:
            self.state.random = random.Random(seed)  # noqa: S311 (a test)
            self.state.random_failures = share
            self.state.random_mode = mode

    def fail_always(self, mode: str | None) -> None:
        """Make every POST request fail in ``mode`` (``None``: stop)."""
        if mode is not None and mode not in FAILURE_MODES:
            raise ValueError(f"mode must be one of {sorted(FAILURE_MODES)}")
        with self.state.lock:
            self.state.always = mode
