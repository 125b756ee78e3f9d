"""A minimal Streamlit client: one browser tab's protocol (page GET, websocket of protobuf messages, media GET).

It is what the crowd benchmark drives instead of a browser per session: a tab costs ~100 MB and
a core's share of rendering, which would make the load generator, not the server, the bottleneck.
Loopback and test servers only. Messages follow Streamlit 1.67's BackMsg / ForwardMsg protos.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

RUN_TIMEOUT_S = 60.0
MAX_MESSAGE_BYTES = 64 * 2**20


@dataclass
class RunResult:
    """What one script run sent back: seconds to the first new image and to the end, images, buttons, errors."""

    image_s: float | None = None
    finished_s: float | None = None
    images: list[str] = field(default_factory=list)
    buttons: dict[str, str] = field(default_factory=dict)  # label -> widget id
    inputs: dict[str, str] = field(default_factory=dict)  # text inputs and components: label (or "component") -> id
    texts: list[str] = field(default_factory=list)  # markdown and alert bodies, for a client that reads the page
    errors: list[str] = field(default_factory=list)
    polls: dict[str, float] = field(default_factory=dict)  # fragment id -> seconds between its automatic reruns


async def http_get(url: str, *, cookie: str = "", headers: dict | None = None,
                   timeout: float = 30.0) -> tuple[int, dict, bytes]:
    """(status, headers lower-cased, body) of a plain HTTP/1.0 GET (loopback servers; no TLS)."""
    parts = urlsplit(url)
    reader, writer = await asyncio.wait_for(asyncio.open_connection(parts.hostname, parts.port or 80), timeout)
    try:
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        request = f"GET {path} HTTP/1.0\r\nHost: {parts.netloc}\r\nUser-Agent: aigc-crowd\r\n"
        if cookie:
            request += f"Cookie: {cookie}\r\n"
        request += "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
        writer.write((request + "\r\n").encode())
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        key = name.strip().lower()
        headers[key] = f"{headers[key]}; {value.strip()}" if key in headers and key == "set-cookie" else value.strip()
    return status, headers, body


class StreamlitSession:
    """One session: open() like a tab loading the page, run() for a rerun or a click, fetch() for media."""

    def __init__(self, base_url: str, *, query: str = "", page: str = "", headers: dict | None = None):
        self.base_url, self.query, self.page = base_url.rstrip("/"), query, page
        self.headers = dict(headers or {})  # sent with every request (e.g. X-Forwarded-For as a proxy would)
        self.cookie = ""
        self.upstream: set[str] = set()  # X-Upstream headers a load balancer added (which replica answered)
        self.ws = None
        self.page_hash = ""
        self.last: RunResult | None = None
        self.cache: dict[str, ForwardMsg] = {}  # cacheable messages by hash, as the browser keeps them

    async def open(self) -> RunResult:
        """GET the page (cookies, e.g. a load balancer's affinity), open the websocket, run the script once."""
        status, headers, _body = await http_get(f"{self.base_url}/{self.page}", cookie=self.cookie,
                                                headers=self.headers)
        if status != 200:
            raise ConnectionError(f"GET /{self.page} answered {status}")
        self._remember(headers)
        ws_url = "ws" + self.base_url[len("http"):] + "/_stcore/stream"
        extra = {**self.headers, **({"Cookie": self.cookie} if self.cookie else {})}
        self.ws = await websockets.connect(ws_url, subprotocols=["streamlit"], additional_headers=extra,
                                           max_size=MAX_MESSAGE_BYTES, open_timeout=30)
        upstream = self.ws.response.headers.get("X-Upstream") if self.ws.response else None
        if upstream:
            self.upstream.add(upstream)
        return await self.run()

    def _remember(self, headers: dict) -> None:
        if headers.get("x-upstream"):
            self.upstream.add(headers["x-upstream"])
        cookies = [part.split(";", 1)[0].strip() for part in headers.get("set-cookie", "").split("; ")
                   if "=" in part.split(";", 1)[0] and part.split("=", 1)[0].strip().lower() not in
                   ("path", "expires", "max-age", "samesite", "domain")]
        if cookies and not self.cookie:
            self.cookie = "; ".join(cookies)

    async def run(self, *, click: str | None = None, strings: dict[str, str] | None = None,
                  fragment: str | None = None, timeout: float = RUN_TIMEOUT_S) -> RunResult:
        """Rerun the script and collect what comes back.

        click: press the button with this label; strings: {input label or "component": value} (a text input's
        string, a component's JSON); fragment: rerun only this fragment, as the browser does for run_every.
        """
        message = BackMsg()
        state = message.rerun_script
        state.query_string = self.query
        state.page_script_hash = self.page_hash
        state.page_name = self.page
        state.cached_message_hashes.extend(self.cache)  # as the browser does: the server then sends references
        if fragment is not None:
            state.fragment_id = fragment
            state.is_auto_rerun = True
        for label, value in (strings or {}).items():
            widget = state.widget_states.widgets.add()
            widget.id = self.last.inputs[label]
            if label == "component":
                widget.json_value = value
            else:
                widget.string_value = value
        if click is not None:
            widget = state.widget_states.widgets.add()
            widget.id = self.last.buttons[click]
            widget.trigger_value = True
        start = time.perf_counter()
        await self.ws.send(message.SerializeToString())
        result = await asyncio.wait_for(self._collect(start), timeout)
        if fragment is not None and self.last is not None:  # a fragment's rerun redraws only that fragment
            result.buttons = {**self.last.buttons, **result.buttons}
            result.inputs = {**self.last.inputs, **result.inputs}
            result.polls = {**self.last.polls, **result.polls}
        self.last = result
        return result

    async def clear_cache(self) -> None:
        """Send the clear-cache message any visitor can send (it empties st.cache_* for every session)."""
        message = BackMsg()
        message.clear_cache = True
        await self.ws.send(message.SerializeToString())

    async def _collect(self, start: float) -> RunResult:
        result = RunResult()
        previous = set(self.last.images) if self.last else set()
        while True:
            forward = ForwardMsg()
            forward.ParseFromString(await self.ws.recv())
            kind = forward.WhichOneof("type")
            if kind == "ref_hash" and forward.ref_hash in self.cache:
                forward = self.cache[forward.ref_hash]
                kind = forward.WhichOneof("type")
            elif forward.metadata.cacheable and forward.hash:
                self.cache[forward.hash] = forward
            if kind == "new_session":
                self.page_hash = forward.new_session.page_script_hash or self.page_hash
            elif kind == "navigation":  # st.navigation resolved the page: the hash a browser then sends back
                self.page_hash = forward.navigation.page_script_hash or self.page_hash
            elif kind == "auto_rerun":
                result.polls[forward.auto_rerun.fragment_id] = forward.auto_rerun.interval
            elif kind == "delta" and forward.delta.WhichOneof("type") == "new_element":
                self._element(forward.delta.new_element, result, previous, start)
            elif kind == "script_finished":
                if forward.script_finished == ForwardMsg.FINISHED_EARLY_FOR_RERUN:
                    continue  # st.switch_page or st.rerun: the run that follows is the one this request gets
                result.finished_s = time.perf_counter() - start
                return result

    @staticmethod
    def _element(element, result: RunResult, previous: set, start: float) -> None:
        kind = element.WhichOneof("type")
        if kind == "imgs":
            for image in element.imgs.imgs:
                result.images.append(image.url)
                if result.image_s is None and image.url not in previous:
                    result.image_s = time.perf_counter() - start
        elif kind == "button":
            result.buttons[element.button.label] = element.button.id
        elif kind == "text_input":
            result.inputs[element.text_input.label] = element.text_input.id
        elif kind == "component_instance":
            result.inputs["component"] = element.component_instance.id
        elif kind == "bidi_component":  # components v2 (the drawing canvas)
            result.inputs["component"] = element.bidi_component.id
        elif kind == "markdown":
            result.texts.append(element.markdown.body)
        elif kind == "exception":
            result.errors.append(f"exception: {element.exception.type}")
        elif kind == "alert":
            result.texts.append(element.alert.body)
            if element.alert.format == element.alert.ERROR:
                result.errors.append(f"error: {element.alert.body[:120]}")

    async def fetch(self, url: str) -> float:
        """GET a media URL (as the browser does for an image); seconds it took. Raises on a non-200 answer."""
        start = time.perf_counter()
        status, headers, body = await http_get(url if url.startswith("http") else self.base_url + url,
                                               cookie=self.cookie, headers=self.headers)
        self._remember(headers)
        if status != 200 or not body:
            raise ConnectionError(f"media GET answered {status}")
        return time.perf_counter() - start

    async def close(self) -> None:
        """Close the websocket (the server then forgets the session)."""
        if self.ws is not None:
            await self.ws.close()
