"""The library every stage shares (preprocess, train, predict import it, never each other)."""
