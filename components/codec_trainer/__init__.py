"""The CodecTrainer component: TFX's Trainer that tells run_fn its examples' TFRecord codec."""
