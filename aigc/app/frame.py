"""The frame around every page: page setup, navigation, the sidebar's generator chooser and hosting notices."""
from __future__ import annotations

import contextlib
import dataclasses
import gc
import logging
import re
import threading
import time

import streamlit as st

from aigc.app.pages import compare, draw, generate, model, train, write
from aigc.app.routes import HOME, PAGES, Frame, redirect_target, visible_keys
from aigc.app.widgets import guarded, spinner_unless
from aigc import settings
from aigc.serve import hosting, trust, watcher
from aigc.serve.generators import (GeneratorChoice, Served, default_choice, finished_since, find_choice,
                                   generator_choices, is_loaded, load_served, serve_with_fallback)
from aigc.serve.trust import Visitor

LOG = logging.getLogger("aigc.app.frame")
TITLE = "AIGC digits"
GENERATOR_KEY = "generator_choice"
REMEMBERED_KEY = "_generator_label"  # the link name of the generator this session serves (pages put it in links)
SEEN_KEY = "_generator_runs_seen"  # finished runs this session knew of when it last chose
GONE_KEY = "_generator_gone"  # the sentence saying a remembered run is gone, until a page run has shown it
SAFE_NAME = re.compile(r"[A-Za-z0-9 .()-]{1,80}")  # a linked name shown back on the page (no markdown)
TOP_CSS = "<style>.stMainBlockContainer, .block-container {padding-top: 2.5rem;}</style>"
PAGE_MODULES = {"generate": generate, "write": write, "draw": draw, "train": train, "compare": compare, "model": model}
_FROZEN, _FREEZE_LOCK = {"at": None, "kept": 0}, threading.Lock()  # when the heap was last frozen, by freeze_heap
TRAINING_OFF_KEY = "_training_off"
TRAINING_OFF = ("Training is turned off on this server, so it has no Train page. Generate, Write a number, Draw a "
                "digit, Compare runs and Model work as usual.")
_TUNED, _WARM_LOCK = threading.Event(), threading.Lock()  # the warm-up (TensorFlow tuned for serving) has started
_TUNE_REGISTERED = threading.Event()  # tune_before_loading has registered the tuning
_RUNS, _RUNS_ACTIVE = threading.Condition(), [0]  # script runs in flight (script_run), and the warm-up between them
WARM_UP_AFTER_S = 3.0  # the background warm-up starts this long after a server's first page
REFREEZE_S = 300.0  # the long-lived heap is frozen again at most this often...
REFREEZE_RECORDS = 5000  # ...or once the run watchers kept this many more records
CONFIG_POLL_S = 5.0  # how often this server looks for changes to its config and secrets files (Streamlit: 0.2 s)


def slow_config_polling() -> None:
    """Streamlit polls its config.toml files (and secrets files) for changes every 0.2 s from a thread pool, whatever
    server.fileWatcherType says: ~3 ms of server CPU every 1.5 s, a sixth of what a watcher's live poll costs
    (bench --page-costs). Every 5 s instead: a config change on a running server takes effect within 5 s."""
    try:
        from streamlit.watcher import polling_path_watcher
    except ImportError:  # a Streamlit without it polls nothing
        return
    if isinstance(getattr(polling_path_watcher, "_POLLING_PERIOD_SECS", None), (int, float)):
        polling_path_watcher._POLLING_PERIOD_SECS = CONFIG_POLL_S  # read at each poll: it applies from the next one


slow_config_polling()  # once per server process (this module is imported once)


def main() -> None:
    """One script run: the frame, then the current page (never while the warm-up imports TensorFlow)."""
    with script_run():
        _frame_and_page()


def _frame_and_page() -> None:
    st.set_page_config(page_title=TITLE, page_icon="🔢", layout="wide")
    st.html(TOP_CSS)  # remove the empty band Streamlit leaves above the title
    visitor = current_visitor()
    tune_before_loading()
    # Local mode is a property of this connection: a proxied or remote visitor gets the policy of a reachable server.
    policy = hosting.load_policy(secrets=streamlit_secrets(), address=server_address() if visitor.local else "")
    generator_from_query()  # a shared link names its generator
    served = guarded(generator_sidebar_ui, policy, name="generator chooser")
    pages = build_pages(Frame(policy, served, visitor))
    current = st.navigation(list(pages.values()))
    redirect_old_links(pages)
    st.title(TITLE)
    st.caption("Handwritten digits from a GAN trained on MNIST.")
    for notice in policy.notices:
        st.sidebar.warning(notice)
    if served is not None and served.warning:
        st.warning(served.warning)
    current.run()
    st.session_state.pop(GONE_KEY, None)  # shown by a page (a redirect ends the run above, before this line)
    warm_up_once(served)
    freeze_heap()


def _connected() -> bool:
    try:
        return bool(dict(st.context.headers))
    except Exception:  # noqa: BLE001
        return False


def tune_before_loading() -> None:
    """A server (a real connection) tunes TensorFlow before its first model load, whichever run or thread loads it:
    tuned after TensorFlow's first use the setting did not take, and New seed cost 138 ms of server CPU instead of
    104 (bench --page-costs, whose first visit loads the generator before the warm-up runs)."""
    from aigc.engine.sampling import tune_for_a_server
    from aigc.serve import generators

    if not _TUNE_REGISTERED.is_set() and _connected():
        _TUNE_REGISTERED.set()
        generators.BEFORE_FIRST_LOAD.append(tune_for_a_server)


def warm_up_once(served: Served | None) -> threading.Thread | None:
    """Once per server process with a real connection, after its first page: TensorFlow imported and tuned for serving
    (engine/sampling.py), the served generator and the evaluator loaded, in a background thread.

    A cold server shows its first page from the warm store (serve/warm.py) without TensorFlow; this makes the
    next click as fast as on a warm server. AppTest runs have no connection and share the test process with
    in-process training: left alone. Returns the thread it started (None when there was nothing to do).
    """
    if _TUNED.is_set():
        return None
    connected = _connected()
    with _WARM_LOCK:
        if not connected or _TUNED.is_set():
            return None
        _TUNED.set()
    thread = threading.Thread(target=_warm_up, args=(served.path if served else None,), name="aigc-warm-up",
                              daemon=True)
    thread.start()
    return thread


@contextlib.contextmanager
def script_run():
    """Counts the script runs in flight; a run starts only while the warm-up is not importing TensorFlow.

    TensorFlow's import is not thread-safe: a page importing it while the warm-up did failed with "dataset_ops has
    no attribute 'DatasetV2'" (Draw) or "Registering two gradient with name 'ReduceDataset'" (New seed). So the
    warm-up imports only between runs, and runs that start meanwhile wait for it (at most the import, ~5-8 s).
    """
    with _RUNS:
        _RUNS_ACTIVE[0] += 1
    try:
        yield
    finally:
        with _RUNS:
            _RUNS_ACTIVE[0] -= 1
            _RUNS.notify_all()


def _warm_up(path) -> None:
    # TensorFlow's import holds the GIL and a core for seconds: started at once, it delayed the first page's images
    # (fetched from this process) by ~3 s on 2 cores; after WARM_UP_AFTER_S they have arrived (bench --browser).
    time.sleep(WARM_UP_AFTER_S)
    with _RUNS:  # no page runs meanwhile (script_run)
        _RUNS.wait_for(lambda: _RUNS_ACTIVE[0] == 0)
        try:
            from aigc.engine.sampling import tune_for_a_server
            from aigc.quality import metrics

            tune_for_a_server()
            if path is not None:
                load_served(path)
            if metrics.evaluator_available():
                metrics.load_evaluator()
        except Exception as error:  # noqa: BLE001 - a page that needs the file says why; this thread only prepares
            LOG.warning("warm-up: %s", error)
    with _FREEZE_LOCK:  # the heap grew by TensorFlow and the models: freeze it after the next page, not in 5 min
        _FROZEN["at"] = None


def current_visitor() -> Visitor:
    """This session's connection: local owner only from loopback with no forwarding header (serve/trust.py)."""
    try:
        headers = dict(st.context.headers)
        peer = st.context.ip_address  # None for 127.0.0.1 / ::1 (and when there is no connection at all)
    except Exception:  # noqa: BLE001  (no context: judge it remote, the safe side)
        return Visitor(local=False, client="unknown", forwarded=False)
    return trust.visitor("127.0.0.1" if peer is None else peer, headers, connected=bool(headers),
                         trusted_proxy=settings.trusted_proxy())


def server_address() -> str:
    """streamlit's server.address ('' when unset or unreadable: every interface, the safe side)."""
    try:
        return str(st.get_option("server.address") or "")
    except Exception:  # noqa: BLE001
        return ""


def streamlit_secrets() -> dict:
    """st.secrets' AIGC_* entries as a plain dict; {} when there is no secrets file (not an error)."""
    try:
        if not st.secrets.load_if_toml_exists():
            return {}
        return {key: st.secrets[key] for key in st.secrets if key.startswith("AIGC_")}
    except Exception:  # noqa: BLE001  (a broken secrets file must not take the page down)
        return {}


def build_pages(frame: Frame) -> dict[str, st.Page]:
    """{key: st.Page} for this deployment, plus a hidden root page that redirects to Generate."""
    pages = {}
    for key, title, icon, needs_generator in PAGES:
        if key in visible_keys(frame.policy):
            pages[key] = st.Page(_body(key, frame, needs_generator), title=title, icon=icon, url_path=key)
    pages[""] = st.Page(lambda: redirect(pages, HOME), title=TITLE, url_path="home", default=True,
                        visibility="hidden")
    if "train" not in pages:  # a /train link on a server without training: a sentence, not "Page not found"
        pages[TRAINING_OFF_KEY] = st.Page(lambda: st.info(TRAINING_OFF), title="Train", url_path="train",
                                          visibility="hidden")
    return pages


def _body(key: str, frame: Frame, needs_generator: bool):
    def page() -> None:
        if needs_generator and frame.served is None:
            no_generator_ui()
            return
        PAGE_MODULES[key].page(frame)
    page.__name__ = f"{key}_page"
    return page


def redirect_old_links(pages: dict[str, st.Page]) -> None:
    """An old link (?view=model&...) goes to its page (/model?...), keeping its other parameters."""
    if "view" in st.query_params:
        redirect(pages, redirect_target(st.query_params.get("view"), [k for k in pages if k]))


def redirect(pages: dict[str, st.Page], key: str) -> None:
    """Switch to the page `key`, carrying the URL's other parameters (st.switch_page ends this run)."""
    query = {k: st.query_params.get_all(k) for k in st.query_params if k != "view"}
    st.switch_page(pages[key], query_params={k: v[-1] for k, v in query.items() if v})


def generator_from_query() -> None:
    """Once per session, before the sidebar chooser: ?generator=LABEL preselects it (an unknown label is ignored)."""
    if st.session_state.get("_generator_from_query"):
        return
    st.session_state["_generator_from_query"] = True
    wanted = str(st.query_params.get("generator") or "")[:80]
    if wanted and REMEMBERED_KEY not in st.session_state:
        st.session_state[REMEMBERED_KEY] = wanted  # the chooser says so and serves the shipped one if it is gone


def generator_sidebar_ui(policy: hosting.Policy) -> Served | None:
    """Sidebar chooser among server-side generators; falls back to the shipped one with a warning."""
    choices = generator_choices()
    if not choices:
        st.sidebar.info("No generator yet.")
        return None
    chosen, gone = remembered_choice(choices)
    gone = st.session_state[GONE_KEY] = gone or st.session_state.get(GONE_KEY)
    st.session_state[REMEMBERED_KEY] = chosen.link  # a run by its name: a link keeps meaning that run
    st.session_state.setdefault(SEEN_KEY, [choice.link for choice in finished_since(choices, ())])
    st.session_state[GENERATOR_KEY] = chosen.name  # the chooser shows what is served
    st.sidebar.selectbox("Generator", [choice.name for choice in choices], key=GENERATOR_KEY, on_change=_chose,
                         help="Generators found on the server. A run's generator follows its latest saved epoch "
                         "while it trains; a link names the run itself.")
    if chosen.kind == "run":
        st.sidebar.caption(f"Run: {chosen.run}")
    finished_run_offer_ui(choices, chosen)
    with spinner_unless(is_loaded(chosen.path) if chosen.path.is_file() else True, "Loading the generator..."):
        served, problem = serve_with_fallback(chosen, choices, detailed=policy.shows_details)
    if problem:
        st.error(hosting.visitor_message(problem, policy))
    warning = " ".join(text for text in (gone, served and served.warning) if text)
    if served is not None and warning:
        served = dataclasses.replace(served, warning=hosting.visitor_message(warning, policy))
    return served


def remembered_choice(choices: list[GeneratorChoice]) -> tuple[GeneratorChoice, str | None]:
    """(the choice this session serves, one sentence when the run it remembered or a link named is gone)."""
    remembered = st.session_state.get(REMEMBERED_KEY)
    chosen = find_choice(remembered, choices)
    if chosen is not None or not remembered:
        return chosen or default_choice(choices), None
    fallback = default_choice(choices)
    name = str(remembered) if SAFE_NAME.fullmatch(str(remembered)) else "The linked generator"
    return fallback, f"{name} is no longer on this server; showing {fallback.name} instead."


def _chose() -> None:
    """The chooser changed: remember the run itself (not 'Newest'), and the finished runs known now."""
    choices = generator_choices()
    chosen = find_choice(st.session_state.get(GENERATOR_KEY), choices)
    if chosen is not None:
        st.session_state[REMEMBERED_KEY] = chosen.link
    st.session_state[SEEN_KEY] = [choice.link for choice in finished_since(choices, ())]


def finished_run_offer_ui(choices: list[GeneratorChoice], chosen: GeneratorChoice) -> None:
    """A one-click switch to a run that finished since this session chose its generator (it never switches alone)."""
    offers = [choice for choice in finished_since(choices, st.session_state[SEEN_KEY]) if choice.link != chosen.link]
    if not offers:
        return
    st.sidebar.info(f"{offers[0].link} finished training since you chose a generator.")
    st.sidebar.button(f"Use {offers[0].link}", key="use_finished_run", on_click=_use_run, args=(offers[0].link,),
                      type="primary")


def _use_run(link: str) -> None:
    st.session_state[REMEMBERED_KEY] = link
    st.session_state[SEEN_KEY] = [choice.link for choice in finished_since(generator_choices(), ())]


def no_generator_ui() -> None:
    st.info("No generator is available yet. The shipped weights belong in `checkpoints/generator.keras`; "
            "or train one in the **Train** view, then pick 'Newest trained run' in the sidebar.")


def _freeze_due(now: float, kept: int) -> bool:
    return (_FROZEN["at"] is None or now - _FROZEN["at"] >= REFREEZE_S
            or kept - _FROZEN["kept"] >= REFREEZE_RECORDS)


def freeze_heap() -> None:
    """After each page, when due: move the long-lived heap out of the cyclic GC's sight.

    Streamlit calls keras.backend.clear_session() after every script run (keras is imported), and
    that runs gc.collect(): a full collection on every click and every live poll. With TensorFlow,
    Keras and the served models loaded it walks ~400k objects, ~160 ms with the GIL held, during
    which the server sends nothing; a run watcher's 14k records of a 10,000-epoch run add ~12 ms to
    each poll. gc.freeze() leaves such objects alone (the interpreter's documented tool for a large
    long-lived heap). It is done after the first page, then again at most every REFREEZE_S, or
    sooner once the run watchers kept REFREEZE_RECORDS more records. Each time, gc.unfreeze() first
    and a full collection, so what died since the last freeze is freed (cycles included): memory is
    bounded, and the cost is one full collection per freeze.

    The app leaves Streamlit's clear_session() call alone rather than patch Keras. The TensorFlow
    kernel cache it empties makes the next run that generates rebuild its kernels. Measured on 2
    shared cores, median per click: "New seed" 111-141 ms with the call vs 50-70 ms without it in
    AppTest (10 clicks), and 119-187 ms vs 75-100 ms over a real server's websocket (20 clicks); a
    cached "Generate" costs the same either way (17-25 ms in AppTest, 49-54 ms over the websocket).
    Streamlit's own gc.collect(2) after each run is off in .streamlit/config.toml (`postScriptGC`).
    """
    # Not gc.get_freeze_count(): it walks the whole frozen list with the GIL held (~40 ms a run under load).
    now, kept = time.monotonic(), watcher.records_kept
    if not _freeze_due(now, kept):
        return
    with _FREEZE_LOCK:
        if not _freeze_due(now, kept):
            return  # another session froze it meanwhile
        gc.unfreeze()
        gc.collect()  # what is garbage now is freed, not frozen
        gc.freeze()
        _FROZEN.update(at=time.monotonic(), kept=kept)

