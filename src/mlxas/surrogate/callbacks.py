"""Keras callbacks of surrogate training: progress lines and relative early stopping."""

from __future__ import annotations

import time

import numpy as np

__all__ = ["progress_callback", "relative_early_stopping"]


def progress_callback(label: str, every: int = 25):
    """A Keras callback that prints one line to stderr every ``every`` epochs."""
    import sys

    import keras

    class Progress(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            if (epoch + 1) % every == 0:
                logs = logs or {}
                print(
                    f"{label}: epoch {epoch + 1}, loss {logs.get('loss', float('nan')):.4g}, "
                    f"val_loss {logs.get('val_loss', float('nan')):.4g}, "
                    f"{time.perf_counter() - self.start:.0f} s",
                    file=sys.stderr,
                    flush=True,
                )

    return Progress()


def relative_early_stopping(patience: int, min_improvement: float):
    """Early stopping on the validation loss that counts an epoch as better only when it
    beats the best so far by ``min_improvement`` (relative), and restores the best
    weights.  Keras' own absolute ``min_delta`` does not suit losses whose scale differs
    by orders of magnitude between data sets (Cu without, Au with thermal damping)."""
    import keras

    class Stop(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.best, self.best_weights, self.wait = np.inf, None, 0

        def on_epoch_end(self, epoch, logs=None):
            val = (logs or {}).get("val_loss", np.inf)
            if val < self.best * (1.0 - min_improvement):
                self.best, self.wait = val, 0
                self.best_weights = self.model.get_weights()
            else:
                self.wait += 1
                if self.wait >= patience:
                    self.model.stop_training = True

        def on_train_end(self, logs=None):
            if self.best_weights is not None:
                self.model.set_weights(self.best_weights)

    return Stop()
