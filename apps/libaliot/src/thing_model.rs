//! The typed thing-model API generated from the manifest's TSL (see [`crate::thing`]).
include!(concat!(env!("OUT_DIR"), "/thing_model.rs"));
