//! kiln-core (in progress).
