"""'How this works' on every page: a short explanation, collapsed by default, in the page's own words.

Each page calls how_it_works(its key) once at the top. The texts are short paragraphs shared between pages (a GAN,
the latent and its scale, a hand, the evaluator's figures, the Train charts), plus one diagram of the GAN.
"""
from __future__ import annotations

import base64
import functools
import html
from pathlib import Path

import streamlit as st

from aigc.engine.epoch_loop import PROBE_SAMPLES
from aigc.engine.spec import SETTINGS

TITLE = "How this works"
GAN = ("**A GAN** is two networks trained against each other. The **generator** (G) turns a handful of random "
       "numbers, the *latent*, and the digit asked for into a 28x28 image. The **discriminator** (D) sees real MNIST "
       "digits and generated ones and scores each: D(x) near 1 means *looks real*, near 0 *looks generated*. At each "
       "training step D learns to tell them apart and G learns to fool D; after a few epochs G's digits pass for "
       "handwriting.")
LATENT = ("**Seed and latent.** The seed picks the latents, so the same seed and settings always give the same "
          "digits (that is why a link reproduces a grid). Nearby latents give similar digits: *Interpolate* walks "
          "from one to another.")
SCALE = ("**Latent scale (truncation)** multiplies the latent: below 1 the digits get tidier and more alike, above 1 "
         "wilder and more varied, sometimes broken.")
HAND = ("**A hand** is one latent kept fixed while the digit asked for changes: the generator then writes every digit "
        "in the same style (ink, slant, width), as one person would.")
READING = ("**The labels** on the tiles are the *evaluator's* reading: a small classifier trained on real MNIST, "
           "separate from the GAN. 'a 7, 98%' means it reads a 7 and is 98% sure; a red frame marks a doubtful "
           "reading or a digit unlike MNIST.")
QUALITY = ("**FDD** (Frechet digit distance) compares generated digits with real MNIST test digits in the "
           "evaluator's features: lower is closer to real, and the *floor* is what real digits score against real "
           "ones. **Class accuracy** is the share of generated digits the evaluator reads as the digit asked for. "
           "**Digit score** (1-10) is high when digits are clear and all ten appear. Fewer samples give a higher FDD: "
           "compare figures measured on the same number of samples.")
LOSSES = ("**Losses.** D loss and G loss do not fall to zero as in ordinary training: they are the two sides of one "
          "contest. A steady tug-of-war is healthy; a D loss near 0 while the G loss climbs means D has won and G "
          "learns little.")
D_CHART = ("**D(x) and D(G(z))** are D's average scores of real digits and of generated ones. Early on D tells them "
           "apart (D(x) high, D(G(z)) low); as the generator improves, the two move toward each other.")
CHECKS = (f"**Quick checks and evaluations.** During a run's first epoch a quick check every "
          f"{SETTINGS['probe_seconds'].default:g} s of training measures {PROBE_SAMPLES} samples (dotted: noisier, "
          f"and a higher FDD); each epoch's end evaluates "
          f"{SETTINGS['eval_samples'].default:,} by default (solid). Compare dotted with dotted, solid with solid.")
INSIDE = ("**Inside the GAN** (under the samples): D's score on each tile of the fixed grid, and a map where each dot "
          "is a digit placed by the evaluator's features. Watch the colored (generated) dots settle on the grey cloud "
          "of real digits, epoch after epoch.")
WRITE = ("Each row is one hand: **New hands** draws others, and the sliders nudge the hand's ink, slant and width. "
         "Pin a hand on Generate (click a tile) or on Draw a digit, and it writes here.")
DRAW = ("Your drawing is centered and scaled like an MNIST digit; the evaluator reads it. Then the page *inverts* it: "
        "it searches for the latent whose generated digit looks most like your drawing (*Invert as* names the digit "
        "asked for). That latent is your hand in the GAN: the generator writes all ten digits with it.")
COMPARE = ("Pick runs (and the shipped model) to overlay one figure at a time, on epochs or on training time; below, "
           "the last sample grid of each and a table of their settings and final quality.")
MODEL = ("The **card** says where these weights come from (preset, epochs, data, time) and how good they are. The "
         "**Generator** table lists its layers from the latent up to a 28x28 image; the **Discriminator** table, "
         "from an image down to one score.")
PAGES = {"generate": (GAN, LATENT, SCALE, READING, QUALITY),
         "write": (HAND, WRITE, SCALE),
         "draw": (DRAW, HAND, READING),
         "train": (GAN, LOSSES, D_CHART, QUALITY, CHECKS, INSIDE),
         "compare": (QUALITY, COMPARE),
         "model": (MODEL, GAN, QUALITY)}
DIAGRAM_PAGES = ("generate", "train")
# The GAN in one picture, as a file: rendered once by Graphviz (its source is inside), shown as an image. Drawn by
# st.graphviz_chart, every first visit loaded ~0.8 MB of Graphviz WebAssembly before the page's first digits.
DIAGRAM = Path(__file__).with_name("gan_diagram.svg")
DIAGRAM_ALT = ("A diagram of a GAN: random numbers z and the digit asked for go into the Generator, which makes a digit; "
               "the Discriminator scores generated and real MNIST digits from 0 (fake) to 1 (real).")


@functools.cache
def diagram_html() -> str:
    """The diagram as an <img> (not st.image: the page's images are its results, first of all the grid)."""
    data = base64.b64encode(DIAGRAM.read_bytes()).decode()
    return f'<img src="data:image/svg+xml;base64,{data}" alt="{html.escape(DIAGRAM_ALT)}" style="max-width:100%">'


def how_it_works(page_key: str) -> None:
    """The page's 'How this works', collapsed: a few short paragraphs (and the GAN diagram on Generate and Train)."""
    parts = PAGES.get(page_key)
    if not parts:
        return
    with st.expander(TITLE, icon=":material/school:"):
        if page_key in DIAGRAM_PAGES:
            st.html(diagram_html())
        for text in parts:
            st.markdown(text)
