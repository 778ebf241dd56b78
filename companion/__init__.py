"""companion: the tested code behind the Generative AI Engineer's executable textbook.

Modules are imported explicitly (``from companion.evaluate import DigitsEvaluator``);
importing the package itself does nothing else.
"""

__version__ = "0.1.0"
