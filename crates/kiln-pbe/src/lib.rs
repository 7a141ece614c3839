//! Programming by example (in progress).
