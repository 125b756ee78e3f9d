"""Model page: the served generator's card (quality, data, lineage, recipe, downloads) and both architectures."""
from __future__ import annotations

import json

import streamlit as st

from aigc.app.explain import how_it_works
from aigc.app.routes import Frame
from aigc.app.widgets import guarded
from aigc.serve import hosting
from aigc.serve.caches import DISCRIMINATORS
from aigc.serve.generators import Served
from aigc.serve.model_card import card_rows, quality_of, quality_rows, readme, recipe_rows


def page(frame: Frame) -> None:
    """The Model page: the served generator's card and both networks' layers."""
    guarded(model_ui, frame.served, frame.policy, name="Model")


def layer_rows(model) -> list[dict]:
    """One row per layer: name, type, output shape, parameter count."""
    rows = []
    for layer in model.layers:
        try:
            shape = str(tuple(layer.output.shape))
        except (AttributeError, ValueError):
            shape = "?"
        rows.append({"layer": layer.name, "type": type(layer).__name__, "output shape": shape.replace("None", "N"),
                     "params": int(layer.count_params()) if layer.built else 0})
    return rows




def discriminator_of(config_json: str):
    """The discriminator architecture of a config (weights untrained: shapes and params only), built once per config."""
    def make():
        from aigc.engine.spec import ModelConfig
        from aigc.engine.models import build_discriminator

        return build_discriminator(ModelConfig.from_dict(json.loads(config_json)))

    return DISCRIMINATORS.get_or_make(config_json, make)


def model_ui(served: Served, policy: hosting.Policy) -> None:
    """Card, then both architectures."""
    how_it_works("model")
    st.subheader(served.label)
    card_ui(served, policy)
    generator_tab, discriminator_tab = st.tabs(["Generator", "Discriminator"])
    with generator_tab:
        _architecture_ui(served.model)
    with discriminator_tab:
        st.caption("The discriminator that trains against this generator (architecture of the preset).")
        _architecture_ui(discriminator_of(served.config.to_json()))


def _architecture_ui(model) -> None:
    rows = layer_rows(model)
    total = sum(row["params"] for row in rows)
    st.markdown(f"**{model.name}**: {len(rows)} layers, {total:,} parameters")
    st.dataframe(rows, hide_index=True, width="stretch", height=35 * (len(rows) + 1) + 3)  # no inner scroll


def card_ui(served: Served, policy: hosting.Policy) -> None:
    """The model card: facts with lineage, quality with its source, the recipe; README and (local) file downloads."""
    card = dict(served.card or {})
    st.table(card_rows(card, served.config, served.label), hide_index=True)
    quality, source = quality_of(served.path, card)
    if quality:
        st.markdown(f"**Quality** (from {source})")
        st.table(quality_rows(quality), hide_index=True)
    else:
        st.caption("No quality measured for this file yet: `python -m aigc eval --checkpoint FILE` measures it.")
    recipe = recipe_rows(card)
    if recipe:
        with st.expander("Training recipe (the run spec)"):
            st.table(recipe, hide_index=True)
    left, right = st.columns(2)
    # The README states where its figures come from and on how many samples, and its snippet loads this file's name.
    text = readme(served.label, served.config, card, quality, source=source, filename=served.path.name)
    left.download_button("Download model card (README.md)", text, file_name="README.md", mime="text/markdown",
                         key="card_download")
    if policy.shows_details:  # local mode only: a hosted app does not hand out its weights
        right.download_button("Download the generator (.keras)", served.path.read_bytes,
                              file_name=served.path.name, mime="application/octet-stream", key="generator_download")
