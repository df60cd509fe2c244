//! Ingest: discovery, tailing and parsing of the Sierra dumper files.

pub mod naming;
