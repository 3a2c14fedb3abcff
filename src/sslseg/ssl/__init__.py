"""Self-supervised pretraining: one module per method, a registry and one generic loop."""
