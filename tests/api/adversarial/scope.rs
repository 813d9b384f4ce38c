//! Adversarial tests: scope.
