//! weir sql tests
