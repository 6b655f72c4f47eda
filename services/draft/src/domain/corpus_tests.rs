//! The parser corpus: realistic order messages and their expected parses.
