"""Training, part of the product: the backbone's adaptation, the attribute models, the whitening, the hybrid's weights
and the demo recipe that chains them (scripts/make_demo.py). Above every other package; nothing below imports it."""
