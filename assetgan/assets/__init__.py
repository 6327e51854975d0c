"""Project assets: the car taxonomy (taxonomy.py) and, later, demo weights with model cards."""
