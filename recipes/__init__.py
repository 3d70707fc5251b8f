"""dlkit's built-in recipes, installed as the `dlkit_recipes` package and found by entry point."""
