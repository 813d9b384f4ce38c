//! Adversarial tests: privilege.
