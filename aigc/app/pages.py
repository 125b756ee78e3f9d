"""The app's pages for st.navigation: one st.Page per view, each with its own URL path; old ?view= links redirect."""
from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from aigc.app import hosting
from aigc.app.common import Served, guarded, no_generator_ui

# key (= URL path), title, icon, whether the page needs a generator. Order is the menu's.
PAGES = (("generate", "Generate", ":material/grid_view:", True),
         ("write", "Write a number", ":material/edit:", True),
         ("draw", "Draw a digit", ":material/draw:", True),
         ("train", "Train", ":material/model_training:", False),
         ("compare", "Compare runs", ":material/compare_arrows:", False),
         ("model", "Model", ":material/description:", True))
HOME = "generate"  # where "/" (and an unknown ?view=) leads


@dataclass(frozen=True)
class Frame:
    """What every page shares: the hosting policy and the served generator (None when none loads)."""

    policy: hosting.Policy
    served: Served | None


def visible_keys(policy: hosting.Policy) -> list[str]:
    """Page keys this deployment registers: Train only when training is visible (a hidden page is not registered)."""
    return [key for key, *_ in PAGES if key != "train" or policy.training_visible]


def build_pages(frame: Frame) -> dict[str, st.Page]:
    """{key: st.Page} for this deployment, plus a hidden root page that redirects to Generate."""
    pages = {}
    for key, title, icon, needs_generator in PAGES:
        if key in visible_keys(frame.policy):
            pages[key] = st.Page(_body(key, frame, needs_generator), title=title, icon=icon, url_path=key)
    pages[""] = st.Page(lambda: redirect(pages, HOME), title="AIGC digits", url_path="home", default=True,
                        visibility="hidden")
    return pages


def redirect_target(view: str | None, keys) -> str:
    """The page key an old ?view= value (forged input) leads to: itself when registered, else Generate."""
    view = str(view or "").strip().lower()[:20]
    return view if view in keys and view else HOME


def redirect_old_links(pages: dict[str, st.Page]) -> None:
    """An old link (?view=model&...) goes to its page (/model?...), keeping its other parameters."""
    if "view" in st.query_params:
        redirect(pages, redirect_target(st.query_params.get("view"), [k for k in pages if k]))


def redirect(pages: dict[str, st.Page], key: str) -> None:
    """Switch to the page `key`, carrying the URL's other parameters (st.switch_page ends this run)."""
    query = {k: st.query_params.get_all(k) for k in st.query_params if k != "view"}
    st.switch_page(pages[key], query_params={k: v[-1] for k, v in query.items() if v})


def _body(key: str, frame: Frame, needs_generator: bool):
    def page() -> None:
        if needs_generator and frame.served is None:
            no_generator_ui()
            return
        _VIEWS[key](frame)
    page.__name__ = f"{key}_page"
    return page


def _generate(frame: Frame) -> None:
    from aigc.app.view_generate import generate_ui, interpolation_ui

    guarded(generate_ui, frame.served, name="Generate")
    guarded(interpolation_ui, frame.served, name="Interpolation")


def _write(frame: Frame) -> None:
    from aigc.app.view_write import write_ui

    guarded(write_ui, frame.served, name="Write a number")


def _draw(frame: Frame) -> None:
    from aigc.app.view_draw import draw_ui

    guarded(draw_ui, frame.served, name="Draw a digit")


def _train(frame: Frame) -> None:
    from aigc.app.view_train import train_ui

    guarded(train_ui, frame.policy, name="Train")


def _compare(frame: Frame) -> None:
    from aigc.app.view_compare import compare_ui

    guarded(compare_ui, frame.policy, name="Compare runs")


def _model(frame: Frame) -> None:
    from aigc.app.view_model import model_ui

    guarded(model_ui, frame.served, frame.policy, name="Model")


_VIEWS = {"generate": _generate, "write": _write, "draw": _draw, "train": _train, "compare": _compare,
          "model": _model}
