"""`warren bench`: Warren measured side by side with raw baselines, in one interleaved run."""
