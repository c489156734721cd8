"""Value types and checks shared by the stores and the search (label filters, gallery row indices): the package
below both, so neither imports the other for them. Pure numpy; imports nothing else of cbir."""
