"""The evaluator and the metrics (FDD, digit score, class accuracy) and the eval command."""
