//! Normalisation of real-format payloads (fixtures in tests/fixtures).
