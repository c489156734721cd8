"""apparel-cbir: content-based image retrieval for clothing photos."""

__version__ = "0.1.0"
