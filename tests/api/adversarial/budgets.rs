//! Adversarial tests: budgets.
