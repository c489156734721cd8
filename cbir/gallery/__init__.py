"""The gallery: labelled photos and their embeddings as a `datasets` dataset (`dataset`), labels from folder
names, streaming builds, live add/remove, and where the committed demo lives."""
