//! placeholder: see the brief
