"""Everything that talks to the API server, and the manifests the operator writes."""
