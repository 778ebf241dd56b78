"""Offline data sets used by the book: nothing here downloads."""

from companion.data.digits import DIGITS_SHAPE, N_TEST, check_images, load_digits

__all__ = ["DIGITS_SHAPE", "N_TEST", "check_images", "load_digits"]
