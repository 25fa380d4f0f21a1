"""The LLaMA model, the shard data loader, the training loop and checkpoints."""
