"""Embedding a photo: the spec (`spec`), backbones and their weight sources (`backbones`, `hf_encoders`),
preprocessing, runtimes and int8 quantisation, the colour descriptor (`colour`) and the extractor."""
