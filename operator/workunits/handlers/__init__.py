"""The kopf wiring: watches feed caches and a queue; reconcilers act on the queue.

Importing :mod:`workunits.handlers.units` registers the handlers with kopf.
"""
