"""The hub's tabs: one module per generator, each with `build() -> gr.Blocks`, runnable alone.

    python demos/faces.py          # or: python -m demos.faces

`demos.ui` holds what the tabs share; `app.py` mounts all four tabs in one page.
"""
