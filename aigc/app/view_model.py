"""Model view: the served generator's architecture, its discriminator's, and its card."""
from __future__ import annotations

import datetime as dt
import json
import numbers

import streamlit as st

from aigc.app.common import Served

CARD_FIELDS = (("preset", "Preset"), ("epochs", "Epochs trained"), ("step", "Steps"), ("data", "Data"),
               ("saved_at", "Saved"), ("trained_at", "Trained"), ("run_dir", "Run"))


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


@st.cache_resource(max_entries=4, show_spinner=False)
def _discriminator(config_json: str):
    """The discriminator architecture of a config (weights untrained: shapes and params only)."""
    from aigc.engine.spec import ModelConfig
    from aigc.engine.models import build_discriminator

    return build_discriminator(ModelConfig.from_dict(json.loads(config_json)))


def model_ui(served: Served, policy=None) -> None:
    """Card, then both architectures."""
    st.subheader(served.label)
    card_ui(served)
    generator_tab, discriminator_tab = st.tabs(["Generator", "Discriminator"])
    with generator_tab:
        _architecture_ui(served.model)
    with discriminator_tab:
        st.caption("The discriminator that trains against this generator (architecture of the preset).")
        _architecture_ui(_discriminator(served.config.to_json()))


def _architecture_ui(model) -> None:
    rows = layer_rows(model)
    total = sum(row["params"] for row in rows)
    st.markdown(f"**{model.name}**: {len(rows)} layers, {total:,} parameters")
    st.dataframe(rows, hide_index=True, width="stretch", height=35 * (len(rows) + 1) + 3)  # no inner scroll


def card_ui(served: Served) -> None:
    """The model card: preset, conditioning, epochs, data, date, and any quality numbers."""
    card, config = dict(served.card or {}), served.config
    facts = {"Preset": config.preset, "Conditional": "yes (digit label input)" if config.conditional else "no",
             "Latent size": config.latent_dim}
    for key, label in CARD_FIELDS:
        if card.get(key) not in (None, ""):
            facts[label] = _format(key, card[key])
    st.table({"": list(facts), "value": [str(v) for v in facts.values()]})
    quality = {k: v for k, v in _flatten(card).items()
               if isinstance(v, numbers.Real) and not isinstance(v, bool) and k.split(".")[-1] not in
               {"epochs", "step", "saved_at", "trained_at"}}
    if quality:
        st.markdown("**Quality and other numbers on the card**")
        st.table({"metric": list(quality), "value": [f"{v:.4g}" for v in quality.values()]})
    extra = {k: v for k, v in card.items() if k not in dict(CARD_FIELDS) and not isinstance(v, (int, float))}
    if extra:
        with st.expander("Full card"):
            st.json(extra)


def _format(key: str, value) -> str:
    if key.endswith("_at") and isinstance(value, (int, float)):
        return dt.datetime.fromtimestamp(value).strftime("%Y-%m-%d %H:%M")
    if key == "run_dir":
        return str(value).rstrip("/").split("/")[-1]
    return str(value)


def _flatten(card: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in card.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out
