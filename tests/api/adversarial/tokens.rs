//! Adversarial tests: tokens.
