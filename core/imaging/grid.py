"""A batch as one picture: the grid AUTOMATIC1111 saves beside a batch."""

from __future__ import annotations

import math
from typing import Sequence

from PIL import Image

from core.errors import InvalidInput

MAX_GRID_SIDE = 4096
"""The grid's longest side in px: cells are shrunk (Lanczos) to fit."""


def image_grid(images: Sequence[Image.Image], *, columns: int | None = None, gap: int = 0,
               background: tuple[int, int, int] = (0, 0, 0)) -> Image.Image:
    """Lay `images` out row by row in a grid of equal cells; returns one RGB picture.

    Args:
        images: at least one picture; each is resized (Lanczos) to a cell the size of the largest one
            (pictures of one size, as a batch is, are pasted as they are).
        columns: cells per row; None picks ceil(sqrt(n)), so 4 pictures make 2x2 and 6 make 3x2.
        gap: px between cells, 0..64.
        background: RGB of the gaps and of empty cells.

    Returns:
        An RGB picture at most MAX_GRID_SIDE px on its longest side (cells shrunk with Lanczos if needed).

    Raises:
        InvalidInput: no pictures, or columns/gap out of range.
    """
    if not images:
        raise InvalidInput("a grid needs at least one picture")
    count = len(images)
    columns = columns or math.ceil(math.sqrt(count))
    if not 1 <= columns <= count or not 0 <= gap <= 64:
        raise InvalidInput(f"columns must be 1..{count} and gap 0..64, got {columns} and {gap}")
    rows = math.ceil(count / columns)
    cell_w, cell_h = max(i.width for i in images), max(i.height for i in images)
    full_w, full_h = columns * cell_w + (columns - 1) * gap, rows * cell_h + (rows - 1) * gap
    shrink = min(1.0, MAX_GRID_SIDE / max(full_w, full_h))
    cell_w, cell_h = max(1, int(cell_w * shrink)), max(1, int(cell_h * shrink))
    grid = Image.new("RGB", (columns * cell_w + (columns - 1) * gap, rows * cell_h + (rows - 1) * gap), background)
    for index, image in enumerate(images):
        cell = image.convert("RGB")
        if cell.size != (cell_w, cell_h):
            cell = cell.resize((cell_w, cell_h), Image.Resampling.LANCZOS)
        row, column = divmod(index, columns)
        grid.paste(cell, (column * (cell_w + gap), row * (cell_h + gap)))
    return grid
