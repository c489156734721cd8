"""Search: the engine that ranks a gallery for a query (`engine`), and what surrounds it: label filters,
duplicate collapse, relevance feedback, explanations, crops and plots."""
