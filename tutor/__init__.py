"""rnn-tutor: watch recurrent networks forget, and watch the fixes work."""

__version__ = "0.1.0"
