"""The ``workunits`` command (also ``kubectl workunits``)."""
