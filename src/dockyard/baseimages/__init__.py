"""baseimages."""
