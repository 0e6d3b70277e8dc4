"""Pure decisions: no I/O, no kopf, no clock of their own. Everything is a function of
what the caller observed and the time it passes in."""
