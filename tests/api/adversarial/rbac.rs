//! Adversarial tests: rbac.
