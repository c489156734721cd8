"""The Gradio app's user interface: it owns the Blocks layout, the request handlers and the public API endpoints.

options (command line), errors (messages for users), handlers (requests -> `cbir.search.engine.SearchEngine`),
api (the gr.api endpoints), layout (the Blocks), events (wiring the UI's components to the handlers).
"""
