"""Training code that is part of the product: the demo models this repository trains on synthetic data."""
