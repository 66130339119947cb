"""mapflow: the runnable companion to *Map the Flow* (ICLR 2026)."""

__version__ = "0.1.0"
