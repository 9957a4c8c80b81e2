"""Keras 3 models: builders in a registry, training with early stopping, model cards.

A saved model maps raw dataset features to labels in physical units: input
standardisation and the inverse target standardisation are Keras ``Normalization``
layers inside it (no ``Lambda`` layers, so it loads with ``safe_mode`` on).
The same statistics are written to ``card.json`` as plain JSON.
"""
