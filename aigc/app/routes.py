"""The page table and URL helpers: a leaf that imports nothing of the app (pages and the frame both use it)."""
from __future__ import annotations

import urllib.parse
from dataclasses import dataclass

import streamlit as st

from aigc.serve.generators import Served
from aigc.serve.hosting import Policy
from aigc.serve.trust import Visitor

# key (= URL path = the module aigc/app/pages/<key>.py), title, icon, whether it needs a generator. Menu order.
PAGES = (("generate", "Generate", ":material/grid_view:", True),
         ("write", "Write a number", ":material/edit:", True),
         ("draw", "Draw a digit", ":material/draw:", True),
         ("train", "Train", ":material/model_training:", False),
         ("compare", "Compare runs", ":material/compare_arrows:", False),
         ("model", "Model", ":material/description:", True))
PAGE_KEYS = tuple(key for key, *_ in PAGES)
HOME = "generate"  # where "/" (and an unknown ?view=) leads


@dataclass(frozen=True)
class Frame:
    """What every page receives: the policy for this visitor, the served generator (None when none loads), the visitor."""

    policy: Policy
    served: Served | None
    visitor: Visitor = Visitor(local=False, client="unknown", forwarded=False)


def visible_keys(policy: Policy) -> list[str]:
    """Page keys this deployment registers: Train only when training is visible (a hidden page is not registered)."""
    return [key for key in PAGE_KEYS if key != "train" or policy.training_visible]


def redirect_target(view: str | None, keys) -> str:
    """The page key an old ?view= value (forged input) leads to: itself when registered, else Generate."""
    view = str(view or "").strip().lower()[:20]
    return view if view in keys and view else HOME


def page_link(url: str, page: str, query: dict) -> str:
    """The link to `page` (its URL path) with `query`, on the app that `url` (the browser's URL) is part of."""
    base = urllib.parse.urlsplit(str(url or ""))
    parts = [part for part in base.path.split("/") if part]
    if parts and parts[-1] in set(PAGE_KEYS) | {"home"}:
        parts = parts[:-1]  # the page the browser is on: the app's root is above it
    root = "/" + "".join(part + "/" for part in parts)
    origin = f"{base.scheme}://{base.netloc}{root}" if base.scheme in ("http", "https") else root
    return origin + page + ("?" + urllib.parse.urlencode(query) if query else "")


def ascii_values(query, keys) -> tuple[dict[str, str], list[str]]:
    """({key: value} for the `keys` present in query (forged input), [a notice per value that is not ASCII]).

    int() and float() read '٧' (Arabic-Indic) and '７' (full-width) as 7: a link's numbers are ASCII digits only,
    so such a value is dropped here and the one parser (explore.params) gives its default.
    """
    values, notices = {}, []
    for key in keys:
        value = query.get(key)
        if value is None:
            continue
        if str(value).isascii():
            values[key] = str(value)
        else:
            shown = "".join(character for character in str(value)[:12] if character.isalnum())  # no markdown
            notices.append(f"{key}='{shown}' is not written with the digits 0-9; using the default.")
    return values, notices


def sync_query(query: dict, owned: tuple) -> None:
    """Make the URL carry exactly `query` among the `owned` keys (others' keys are left alone)."""
    for key in owned:
        if key not in query and key in st.query_params:
            del st.query_params[key]
    for key, value in query.items():
        if st.query_params.get(key) != value:
            st.query_params[key] = value
