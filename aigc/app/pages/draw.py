"""Draw a digit: read it as MNIST would, invert it into the generator, show it in the GAN's hand for all ten digits."""
from __future__ import annotations

import hashlib

import numpy as np
import streamlit as st

from aigc.app.explain import how_it_works
from aigc.app.routes import Frame
from aigc.app.widgets import (a_digit, copy_link_ui, guarded, labeled_png, picture_png, pin, reading_caption,
                              results_first_on_phones, spinner_unless, toast, whole_number_input)
from aigc.serve.caches import INVERSIONS, file_key
from aigc.serve.generators import Served
from aigc.engine.sampling import latents, run_generator, slerp
from aigc.explore.params import SEED_MAX, SEED_MIN
from aigc.explore.preprocess import MIN_EXTENT, MIN_INK, DrawingError, decode_png, mnist_style
from aigc.explore.reading import hand_problem, percent, read_images

CANVAS_PX = 280  # the canvas is fixed server-side; a forged larger image is refused by decode_png
STROKE_PX = 24
AUTO = "Its reading"
INVERT_AS = [AUTO] + [str(d) for d in range(10)]
FRAMES = 8
CLEARS_KEY = "_draw_clears"  # the canvas's key ends with this count: Clear mounts an empty canvas
RESULT_KEY = "draw_result"


def page(frame: Frame) -> None:
    """The Draw-a-digit page."""
    guarded(draw_ui, frame.served, name="Draw a digit")


def canvas_ui():
    """The drawing canvas (streamlit-drawable-canvas): white ink on black; its result, or None when not installed."""
    try:
        from streamlit_drawable_canvas import st_canvas
    except ImportError:
        st.info("The drawing canvas needs `pip install -r requirements.txt` (streamlit-drawable-canvas).")
        return None

    st.space("medium")  # the canvas's toolbar appears above it on hover: it covers this space, not the instructions
    result = st_canvas(stroke_width=STROKE_PX, stroke_color="#FFFFFF", background_color="#000000", height=CANVAS_PX,
                       width=CANVAS_PX, drawing_mode="freedraw", return_image_data=True,
                       key=f"draw_canvas_{st.session_state.get(CLEARS_KEY, 0)}")
    st.button("Clear", key="draw_clear", icon=":material/delete:", on_click=_clear, help="Empty the canvas.")
    return result


def _clear() -> None:
    st.session_state[CLEARS_KEY] = st.session_state.get(CLEARS_KEY, 0) + 1


def mnist_digit(pixels: np.ndarray) -> np.ndarray:
    """The canvas (H, W, 4) as an MNIST digit (28, 28) in [0, 1]; DrawingError (draw bigger) for a dot or a scribble."""
    return mnist_style(pixels, min_extent=MIN_EXTENT, min_ink=MIN_INK)


def drawing_pixels(result) -> np.ndarray | None:
    """The canvas as (H, W, 4) uint8, or None before anything is drawn (forged data raises DrawingError)."""
    if result is None or not (result.json_data or {}).get("objects"):
        return None
    data = result.image_bytes
    return None if data is None else decode_png(data)


def inverted(served: Served, digit: np.ndarray, label: int) -> tuple[np.ndarray, np.ndarray, float, float]:
    """(z (D,), image (28, 28), pixel MSE, seconds) of one inversion of a (28, 28) drawing, cached per file, drawing, label."""
    target = np.ascontiguousarray(digit, np.float32)

    def make():
        from aigc.explore.invert import invert
        from aigc.quality import metrics

        result = invert(served.model, metrics.load_evaluator().model, target, label, latent_dim=served.latent_dim)
        for array in (result.z, result.image):
            array.setflags(write=False)  # shared between sessions
        return result.z, result.image, result.pixel_error, result.seconds

    key = file_key(served.path) + (hashlib.sha256(target.tobytes()).hexdigest(), int(label))
    with spinner_unless(key in INVERSIONS, "Searching the generator for your digit..."):
        return INVERSIONS.get_or_make(key, make)


def draw_ui(served: Served) -> None:
    """The Draw-a-digit view."""
    from aigc.quality import metrics

    how_it_works("draw")
    if not served.config.conditional:
        st.info("Draw a digit needs a class-conditional generator; this one draws any digit.")
        return
    if not metrics.evaluator_available():
        st.info("Draw a digit needs the shipped evaluator (checkpoints/evaluator.keras) to read and invert drawings.")
        return
    left, right = st.columns([1, 2.2], gap="large")
    with left:
        result = canvas_ui()
        st.caption("**Draw one digit** (mouse or finger), large: it is cropped and centered as MNIST digits were.")
        invert_as = st.selectbox("Invert as", INVERT_AS, key="draw_as",
                                 help="Search the latent for the evaluator's reading, or for a digit you choose.")
        partner = whole_number_input("Random partner seed", SEED_MIN, SEED_MAX, value=1, key="draw_partner")
    results_first_on_phones(RESULT_KEY)
    with right, st.container(key=RESULT_KEY):
        try:
            pixels = drawing_pixels(result)
            if pixels is None:
                st.info("Draw a digit on the canvas; its MNIST version, its reading and the GAN's version appear here.")
                return
            digit = mnist_digit(pixels)
        except DrawingError as error:
            st.info(str(error))
            return
        _results_ui(served, digit, invert_as, int(np.clip(partner, SEED_MIN, SEED_MAX)))


def _results_ui(served: Served, digit: np.ndarray, invert_as: str, partner: int) -> None:
    reading = read_images(digit[None])
    read, confidence = int(reading.labels[0]), float(reading.confidence[0])
    label = read if invert_as not in INVERT_AS[1:] else int(invert_as)
    z, image, error, seconds = inverted(served, digit, label)
    flag = " - looks unlike MNIST digits" if reading.ood[0] else " - unsure" if reading.doubt[0] else ""
    st.markdown(f"**The evaluator reads {a_digit(read)}** ({percent(confidence)} calibrated confidence{flag}).")
    a, b = st.columns(2)
    a.image(picture_png(digit, scale=6), caption="your drawing, MNIST-style (28x28)", output_format="PNG",
            alt=f"Your drawing, cropped and centered as an MNIST digit; the evaluator reads {a_digit(read)}.")
    b.image(picture_png(image, scale=6), caption=f"the GAN's {label} (pixel MSE {error:.3f}, {seconds:.2f} s)",
            output_format="PNG", alt=f"The generator's closest {label} to your drawing.")
    st.markdown("**Your handwriting for all ten digits**")
    ten = run_generator(served.model, np.repeat(z[None], 10, axis=0), np.arange(10, dtype=np.int32))
    tiles, ten_reading = labeled_png(ten, np.arange(10), ncol=5, scale=3)
    st.image(tiles, output_format="PNG", caption=reading_caption(ten_reading, np.arange(10)),
             alt="The digits 0 to 9 written by the generator in the hand found for your drawing.")
    st.markdown(f"**From your {label} to a random one** (partner seed {partner})")
    other = latents(1, len(z), seed=partner)[0]
    path = np.stack([slerp(z, other, t) for t in np.linspace(0, 1, FRAMES)]).astype(np.float32)
    frames = run_generator(served.model, path, np.full(FRAMES, label, np.int32))
    st.image(picture_png(np.concatenate(list(frames), axis=1), scale=3), output_format="PNG",
             caption="slerp in the latent space, same digit label",
             alt=f"{FRAMES} generated {label}s morphing from your hand to a random one.")
    _pin_ui(z, label, read, ten_reading)


def _pin_ui(z: np.ndarray, label: int, read: int, ten_reading) -> None:
    """The pin button, refused with the reason when the hand does not write the ten digits."""
    why = None if ten_reading is None else hand_problem(ten_reading.labels, inverted_as=label, read_as=read)
    if why:
        st.warning(why)
    if st.button("Pin this hand for Write a number", key="draw_pin", disabled=bool(why), help=why) and not why:
        pin(z, label, source=("draw", label, tuple(np.round(z, 5).tolist())))
        toast("pinned: Write a number now writes row 1 in this hand.")
    with st.expander("Share"):
        copy_link_ui({}, page="draw", label="Link to this view (a drawing stays in your browser)")
