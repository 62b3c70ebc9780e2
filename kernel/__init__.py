"""The DeskPilot agent kernel. Never imports Qt or `app`."""
__version__ = "0.1.0"
