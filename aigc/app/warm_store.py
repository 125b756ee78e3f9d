"""Build the warm store (serve/warm.py) of the shipped generator: run the default pages, keep what they computed.

`python -m aigc.app.warm_store --write` after retraining checkpoints/generator.keras (tests/test_warm.py fails
until then). It lives in the app because it runs the app's pages, with Streamlit's AppTest.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from streamlit.testing.v1 import AppTest

from aigc import settings
from aigc.serve import caches, warm

DEFAULT_PAGES = ("generate", "write")  # the pages whose first view the store serves (Generate is the home page)


def build(generator: str | Path) -> Path:
    """Run the default Generate and Write a number pages on `generator` (in its checkpoint folder) and save what they
    computed. The folder's generator must be the shipped one the app serves by default."""
    generator = Path(generator).resolve()
    os.environ[settings.CHECKPOINTS_ENV] = str(generator.parent)
    caches.clear_all()
    # A first pass loads the models and traces their functions: the stored "made in" times are the drawing alone.
    AppTest.from_file(str(settings.ROOT / "app.py"), default_timeout=300).run()
    for cache in warm.STORED.values():
        cache.clear()
    app = AppTest.from_file(str(settings.ROOT / "app.py"), default_timeout=300).run()
    for page in DEFAULT_PAGES[1:]:
        app.query_params["view"] = page
        app.run()
    if app.exception or app.error or not warm.entries_of(generator):
        raise RuntimeError(f"the pages failed or computed nothing: {app.exception or [e.value for e in app.error]}")
    return warm.write(generator)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aigc.app.warm_store", description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="rebuild the warm store of the shipped dcgan generator")
    args = parser.parse_args(argv)
    generator = settings.shipped_generator("dcgan")
    if args.write:
        path = build(generator)
        print(f"wrote {path.name}: {len(warm.entries_of(generator))} results, {path.stat().st_size / 1e3:.0f} KB")
    caches.clear_all()
    warm.forget()
    print(f"{warm.store_path(generator).name} matches {generator.name}: {warm.prime(generator)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
