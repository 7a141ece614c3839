//! Neural-network layer of kiln (in progress).
