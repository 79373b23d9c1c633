"""Data in and out: CSV/JSON Lines import and export, and the demo data set."""
