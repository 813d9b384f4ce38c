//! Adversarial tests: pipeline.
