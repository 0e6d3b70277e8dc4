"""Workunits: declared pieces of work, run as Kubernetes Jobs.

The package is layered: ``api`` (the resources' models, the source of the CRDs),
``core`` (pure decisions: no I/O), ``kube`` (everything that talks to the API
server), ``handlers`` (the kopf wiring) and ``cli`` (the ``workunits`` command).
"""

__version__ = "0.1.0"
GROUP = "workunits.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
